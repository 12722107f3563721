package tokens

import (
	"bytes"
	"encoding/base64"
	"image"
	_ "image/gif"  // register GIF for image.DecodeConfig
	_ "image/jpeg" // register JPEG
	_ "image/png"  // register PNG
)

// OpenAI's vision pricing for images sent with a prompt.
const (
	imageBase      = 85   // every image; all of a "low" detail one
	imageTile      = 170  // each 512-pixel tile of a "high" or "auto" detail image
	imageTileSide  = 512  // side of a tile
	imageMaxSide   = 2048 // the image is first scaled to fit in a square this size
	imageShortSide = 768  // then so that its shortest side is at most this long
	// unknownSide is the width and height assumed for an image whose size the request
	// does not show (a remote URL, a file id, an unreadable header): 765 tokens.
	unknownSide = 1024
)

// imageTokens returns the prompt tokens of a w x h image (0 x 0 when unknown) at the
// given detail: low costs imageBase; anything else is scaled to fit in imageMaxSide
// square, then until its shortest side is imageShortSide (never up), and costs imageBase
// plus imageTile per started tile.
func imageTokens(w, h int, low bool) int {
	if low {
		return imageBase
	}
	if w <= 0 || h <= 0 {
		w, h = unknownSide, unknownSide
	}
	if w > imageMaxSide || h > imageMaxSide {
		if w >= h {
			w, h = imageMaxSide, max(1, h*imageMaxSide/w)
		} else {
			w, h = max(1, w*imageMaxSide/h), imageMaxSide
		}
	}
	if s := min(w, h); s > imageShortSide {
		w, h = w*imageShortSide/s, h*imageShortSide/s
	}
	tiles := ceilDiv(w, imageTileSide) * ceilDiv(h, imageTileSide)
	return imageBase + imageTile*tiles
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// imageSize returns the width and height of the image in a base64 data URL, decoding
// only as much of it as image.DecodeConfig needs to read the header. It returns 0, 0
// for any other URL and for formats the standard library cannot read (such as WebP).
func imageSize(url []byte) (w, h int) {
	const scheme = "data:"
	if len(url) < len(scheme) || !bytes.EqualFold(url[:len(scheme)], []byte(scheme)) {
		return 0, 0
	}
	meta, data, ok := bytes.Cut(url[len(scheme):], []byte{','})
	const enc = ";base64"
	if !ok || len(meta) < len(enc) || !bytes.EqualFold(meta[len(meta)-len(enc):], []byte(enc)) {
		return 0, 0
	}
	cfg, _, err := image.DecodeConfig(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(data)))
	if err != nil {
		return 0, 0
	}
	return cfg.Width, cfg.Height
}
