package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/adler32"
	"hash/crc32"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Image limits and costs. The costs are OpenAI's for gpt-image-1 at 1024x1024.
const (
	maxImages         = 10   // n
	maxInputImages    = 16   // images of an edit
	imageSide         = 8    // every image is 8x8 pixels, whatever size asks
	imageInputTokens  = 85   // an input image or mask of an edit
	lowImageTokens    = 272  // an output image of quality low
	mediumImageTokens = 1056 // of quality medium, auto or standard
	highImageTokens   = 4160 // of quality high or hd
)

type imageRequest struct {
	Model             string          `json:"model"`
	Prompt            *string         `json:"prompt"`
	N                 int             `json:"n"`
	Size              string          `json:"size"`
	Quality           string          `json:"quality"`
	ResponseFormat    string          `json:"response_format"`
	OutputFormat      string          `json:"output_format"`
	OutputCompression *int            `json:"output_compression"`
	Background        string          `json:"background"`
	Stream            bool            `json:"stream"`
	Images            json.RawMessage `json:"images"` // edits
	Image             json.RawMessage `json:"image"`  // edits, the older single image
	Mask              json.RawMessage `json:"mask"`   // edits
}

// validate checks the parameters generations and edits share.
func (req *imageRequest) validate() *apiError {
	if req.Stream {
		return errStream()
	}
	if req.Prompt == nil || *req.Prompt == "" {
		return invalid("prompt", "Missing required parameter: 'prompt'. It must be a non-empty string.")
	}
	if req.N != unset && (req.N < 1 || req.N > maxImages) {
		return invalid("n", "Invalid 'n': it must be between 1 and 10.")
	}
	switch req.Quality {
	case "", "auto", "low", "medium", "high", "standard", "hd":
	default:
		return invalid("quality", "Invalid value: '"+req.Quality+"'. Supported values are: 'low', 'medium', 'high', 'auto', 'standard', and 'hd'.")
	}
	switch req.ResponseFormat {
	case "", "url", "b64_json":
	default:
		return invalid("response_format", "Invalid value: '"+req.ResponseFormat+"'. Supported values are: 'url' and 'b64_json'.")
	}
	switch req.OutputFormat {
	case "", "png", "jpeg", "webp":
	default:
		return invalid("output_format", "Invalid value: '"+req.OutputFormat+"'. Supported values are: 'png', 'jpeg', and 'webp'.")
	}
	if c := req.OutputCompression; c != nil && (*c < 0 || *c > 100) {
		return invalid("output_compression", "Invalid 'output_compression': it must be between 0 and 100.")
	}
	switch req.Background {
	case "", "auto", "opaque":
	case "transparent":
		if req.OutputFormat == "jpeg" {
			return invalid("background", "Transparent background is not supported for the jpeg output format; use png or webp.")
		}
	default:
		return invalid("background", "Invalid value: '"+req.Background+"'. Supported values are: 'transparent', 'opaque', and 'auto'.")
	}
	if req.Size != "" && req.Size != "auto" && !validSize(req.Size) {
		return invalid("size", "Invalid 'size': expected 'auto' or WIDTHxHEIGHT, such as '1024x1024'.")
	}
	return nil
}

// validSize reports whether size is WIDTHxHEIGHT with both from 1 to 4096.
func validSize(size string) bool {
	w, h, ok := strings.Cut(size, "x")
	if !ok {
		return false
	}
	for _, v := range [2]string{w, h} {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4096 || v[0] == '+' {
			return false
		}
	}
	return true
}

// imageRef is a reference to an input image of an edit: a URL (https or a base64 data
// URL) or the id of an uploaded file.
type imageRef struct {
	ImageURL *string `json:"image_url"`
	FileID   *string `json:"file_id"`
}

// parseImageRef reads one image reference: an object with exactly one of image_url and
// file_id, or, where bare is set, a URL string. It returns what identifies the image.
func parseImageRef(raw json.RawMessage, param string, bare bool) (string, *apiError) {
	var url string
	switch {
	case raw[0] == '"' && bare:
		if json.Unmarshal(raw, &url) != nil {
			return "", invalid(param, "Invalid '"+param+"': expected an image URL.")
		}
	case raw[0] == '{':
		var ref imageRef
		if json.Unmarshal(raw, &ref) != nil {
			return "", invalid(param, "Invalid '"+param+"': expected an object with image_url or file_id.")
		}
		if (ref.ImageURL == nil) == (ref.FileID == nil) {
			return "", invalid(param, "Invalid '"+param+"': provide exactly one of image_url or file_id.")
		}
		if ref.FileID != nil {
			if *ref.FileID == "" {
				return "", invalid(param+".file_id", "Invalid '"+param+".file_id': it must not be empty.")
			}
			return "file\x00" + *ref.FileID, nil
		}
		url, param = *ref.ImageURL, param+".image_url"
	default:
		if bare {
			return "", invalid(param, "Invalid type for '"+param+"': expected an object with image_url or file_id, or an image URL.")
		}
		return "", invalid(param, "Invalid type for '"+param+"': expected an object with image_url or file_id.")
	}
	if !strings.HasPrefix(url, "data:image/") && !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return "", invalid(param, "Invalid '"+param+"': expected a URL or a base64-encoded data URL of an image.")
	}
	return "url\x00" + url, nil
}

// editInputs folds an edit's images (images, or the older image) and mask into h, and
// returns it with the number of input images, the mask included.
func (req *imageRequest) editInputs(h uint64) (uint64, int, *apiError) {
	count := 0
	add := func(raw json.RawMessage, param string, bare bool) *apiError {
		id, e := parseImageRef(raw, param, bare)
		if e != nil {
			return e
		}
		h = foldMessage(h, "image", id)
		count++
		return nil
	}
	list := func(raw json.RawMessage, param string, bare bool) *apiError {
		var items []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
			return invalid(param, "Invalid type for '"+param+"': expected an array of image references.")
		}
		if len(items) == 0 {
			return invalid(param, "Invalid '"+param+"': empty array. Expected at least one image.")
		}
		for i, it := range items {
			if e := add(it, param+"["+strconv.Itoa(i)+"]", bare); e != nil {
				return e
			}
		}
		return nil
	}
	if !isNull(req.Images) {
		if e := list(req.Images, "images", false); e != nil {
			return h, 0, e
		}
	}
	if !isNull(req.Image) {
		var e *apiError
		if req.Image[0] == '[' {
			e = list(req.Image, "image", true)
		} else {
			e = add(req.Image, "image", true)
		}
		if e != nil {
			return h, 0, e
		}
	}
	if count == 0 {
		return h, 0, invalid("images", "Missing required parameter: 'images'. An edit needs at least one image.")
	}
	if count > maxInputImages {
		return h, 0, invalid("images", "Invalid 'images': at most 16 images are allowed.")
	}
	if !isNull(req.Mask) {
		id, e := parseImageRef(req.Mask, "mask", true)
		if e != nil {
			return h, 0, e
		}
		h = foldMessage(h, "mask", id)
		count++
	}
	return h, count, nil
}

// imageQuality returns the quality an answer reports for the requested one, and the
// output tokens of one image of it.
func imageQuality(q string) (string, int) {
	switch q {
	case "low":
		return "low", lowImageTokens
	case "high", "hd":
		return "high", highImageTokens
	}
	return "medium", mediumImageTokens
}

// images appends the images answering a generations body, or an edits body when edit is
// set, to b, and returns it with the images' output tokens. Each image is 8x8 pixels of
// one colour drawn from the hash of the prompt (and an edit's images), so the same
// request gets the same images.
func (s *Server) images(b, body []byte, model string, edit bool) ([]byte, int, *apiError) {
	req := imageRequest{N: unset}
	if e := decode(body, &req); e != nil {
		return b, 0, e
	}
	if e := req.validate(); e != nil {
		return b, 0, e
	}
	h := foldMessage(fnvOffset, "prompt", *req.Prompt)
	inputs := 0
	if edit {
		var e *apiError
		if h, inputs, e = req.editInputs(h); e != nil {
			return b, 0, e
		}
	}
	if req.Model != "" {
		model = req.Model
	}
	n := 1
	if req.N != unset {
		n = req.N
	}
	dalle := strings.HasPrefix(model, "dall-e")
	format := req.OutputFormat
	if format == "" || dalle {
		format = "png"
	}
	asURL := req.ResponseFormat == "url" || req.ResponseFormat == "" && dalle
	quality, perImage := imageQuality(req.Quality)

	b = append(b, `{"created":`...)
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, `,"data":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		var p rand.PCG
		seedStream(&p, h, i)
		v := p.Uint64()
		if asURL {
			b = append(b, `{"url":"data:image/`...)
			b = append(b, format...)
			b = append(b, `;base64,`...)
		} else {
			b = append(b, `{"b64_json":"`...)
		}
		// The image is encoded where its base64 goes, then its base64 after it, which
		// then moves over it: no buffer of its own.
		start := len(b)
		b = encodeImage(b, format, [3]byte{byte(v), byte(v >> 8), byte(v >> 16)})
		n := len(b) - start
		b = base64.StdEncoding.AppendEncode(b, b[start:])
		b = append(b[:start], b[start+n:]...)
		b = append(b, '"')
		if strings.HasPrefix(model, "dall-e-3") {
			b = append(b, `,"revised_prompt":`...)
			b = appendString(b, *req.Prompt)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if !dalle { // what OpenAI's GPT image models add, and DALL·E's do not
		b = append(b, `,"output_format":"`...)
		b = append(b, format...)
		b = append(b, `","quality":"`...)
		b = append(b, quality...)
		b = append(b, '"')
		if !s.noUsage {
			text, images, output := CountTokens(*req.Prompt), inputs*imageInputTokens, n*perImage
			b = append(b, `,"usage":{"input_tokens":`...)
			b = appendInt(b, text+images)
			b = append(b, `,"input_tokens_details":{"text_tokens":`...)
			b = appendInt(b, text)
			b = append(b, `,"image_tokens":`...)
			b = appendInt(b, images)
			b = append(b, `},"output_tokens":`...)
			b = appendInt(b, output)
			b = append(b, `,"total_tokens":`...)
			b = appendInt(b, text+images+output)
			b = append(b, '}')
		}
	}
	return append(b, "}\n"...), n * perImage, nil
}

// encodeImage appends an 8x8 image of colour c in format (png, jpeg or webp) to b.
func encodeImage(b []byte, format string, c [3]byte) []byte {
	switch format {
	case "jpeg":
		img := image.NewRGBA(image.Rect(0, 0, imageSide, imageSide))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c[0], c[1], c[2], 0xff
		}
		var buf bytes.Buffer // not over b, which would then escape for every format
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			panic(err) // writing to a bytes.Buffer does not fail
		}
		return append(b, buf.Bytes()...)
	case "webp":
		return appendWebP(b, c)
	}
	return appendPNG(b, c)
}

// appendPNG appends an 8x8 RGB PNG of colour c to b: its pixels in one stored
// (uncompressed) deflate block, which every PNG decoder reads.
func appendPNG(b []byte, c [3]byte) []byte {
	const row = 1 + 3*imageSide // a filter byte (none), then the pixels
	b = append(b, "\x89PNG\r\n\x1a\n"...)
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], imageSide)
	binary.BigEndian.PutUint32(ihdr[4:], imageSide)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB; compression, filter and interlace 0
	b = appendChunk(b, "IHDR", ihdr[:])

	var z [2 + 5 + row*imageSide + 4]byte
	z[0], z[1] = 0x78, 0x01 // zlib: deflate, 32K window, no dictionary
	z[2] = 1                // the final block, stored
	binary.LittleEndian.PutUint16(z[3:], row*imageSide)
	binary.LittleEndian.PutUint16(z[5:], ^uint16(row*imageSide))
	raw := z[7 : 7+row*imageSide]
	for y := range imageSide {
		for x := range imageSide {
			copy(raw[y*row+1+3*x:], c[:])
		}
	}
	binary.BigEndian.PutUint32(z[7+row*imageSide:], adler32.Checksum(raw))
	b = appendChunk(b, "IDAT", z[:])
	return appendChunk(b, "IEND", nil)
}

// appendChunk appends a PNG chunk of type typ.
func appendChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// appendWebP appends an 8x8 lossless WebP of colour c to b. Each of its five prefix
// codes has one symbol, the colour's channel (or distance 0), which takes no bits, so
// the pixels themselves take none.
func appendWebP(b []byte, c [3]byte) []byte {
	var w bitWriter
	w.write(imageSide-1, 14)                                                      // width - 1
	w.write(imageSide-1, 14)                                                      // height - 1
	w.write(0, 1)                                                                 // alpha is not used
	w.write(0, 3)                                                                 // version 0
	w.write(0, 1)                                                                 // no transform
	w.write(0, 1)                                                                 // no colour cache
	w.write(0, 1)                                                                 // no meta prefix codes
	for _, v := range [4]uint64{uint64(c[1]), uint64(c[0]), uint64(c[2]), 0xff} { // green, red, blue, alpha
		w.write(1, 1) // a simple code
		w.write(0, 1) // of one symbol
		w.write(1, 1) // of 8 bits
		w.write(v, 8)
	}
	w.write(1, 1) // distance: a simple code
	w.write(0, 1) // of one symbol
	w.write(0, 1) // of 1 bit
	w.write(0, 1) // symbol 0
	payload := 1 + int(w.n+7)/8
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(4+8+payload+payload%2))
	b = append(b, "WEBPVP8L"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(payload))
	b = append(b, 0x2f) // the VP8L signature
	b = append(b, w.buf[:(w.n+7)/8]...)
	if payload%2 != 0 {
		b = append(b, 0)
	}
	return b
}

// bitWriter packs bits least significant first, as VP8L reads them.
type bitWriter struct {
	buf [16]byte
	n   uint
}

func (w *bitWriter) write(v uint64, n uint) {
	for i := range n {
		if v>>i&1 != 0 {
			w.buf[w.n/8] |= 1 << (w.n % 8)
		}
		w.n++
	}
}
