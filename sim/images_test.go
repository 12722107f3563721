package sim_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/jpeg"
	"image/png"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-batch/sluice/sim"
)

type imagesResponse struct {
	Created int64 `json:"created"`
	Data    []struct {
		B64JSON       string `json:"b64_json"`
		URL           string `json:"url"`
		RevisedPrompt string `json:"revised_prompt"`
	} `json:"data"`
	OutputFormat string       `json:"output_format"`
	Quality      string       `json:"quality"`
	Usage        *imagesUsage `json:"usage"`
}

type imagesUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		TextTokens  int `json:"text_tokens"`
		ImageTokens int `json:"image_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// imagesOf posts an images body to path and checks the answer against the spec's
// ImagesResponse: created, and usage with its required members when present.
func imagesOf(t *testing.T, srv *httptest.Server, path, body string) imagesResponse {
	t.Helper()
	var got imagesResponse
	b := postJSON(t, srv, path, body, &got)
	top := members(t, "images response", b, "created", "data")
	if u, ok := top["usage"]; ok {
		members(t, "usage", u, "input_tokens", "output_tokens", "total_tokens", "input_tokens_details")
		var d struct {
			Details json.RawMessage `json:"input_tokens_details"`
		}
		if err := json.Unmarshal(u, &d); err != nil {
			t.Fatal(err)
		}
		members(t, "input_tokens_details", d.Details, "text_tokens", "image_tokens")
	}
	if got.Created <= 0 {
		t.Errorf("got created %d, want > 0", got.Created)
	}
	return got
}

// decodeImage decodes an 8x8 image of format and returns the colour of its first pixel.
// WebP, which the standard library cannot decode, is checked for its lossless header.
func decodeImage(t *testing.T, format string, raw []byte) [3]uint8 {
	t.Helper()
	var img image.Image
	var err error
	switch format {
	case "png":
		img, err = png.Decode(bytes.NewReader(raw))
	case "jpeg":
		img, err = jpeg.Decode(bytes.NewReader(raw))
	case "webp":
		if len(raw) < 25 || string(raw[:4]) != "RIFF" || string(raw[8:16]) != "WEBPVP8L" || raw[20] != 0x2f ||
			int(binary.LittleEndian.Uint32(raw[4:]))+8 != len(raw) {
			t.Fatalf("got %x, want a lossless WebP", raw)
		}
		size := binary.LittleEndian.Uint32(raw[21:])
		if w, h := size&0x3fff+1, size>>14&0x3fff+1; w != 8 || h != 8 {
			t.Errorf("got a %dx%d WebP, want 8x8", w, h)
		}
		return [3]uint8{}
	default:
		t.Fatalf("unknown format %q", format)
	}
	if err != nil {
		t.Fatalf("decode %s: %v", format, err)
	}
	if b := img.Bounds(); b.Dx() != 8 || b.Dy() != 8 {
		t.Errorf("got a %v %s, want 8x8", b, format)
	}
	r, g, b, _ := img.At(0, 0).RGBA()
	return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
}

// imageBytes returns the bytes of the i-th image of got, from b64_json or a data URL.
func imageBytes(t *testing.T, got imagesResponse, i int, format string) []byte {
	t.Helper()
	s := got.Data[i].B64JSON
	if got.Data[i].URL != "" {
		var ok bool
		if s, ok = strings.CutPrefix(got.Data[i].URL, "data:image/"+format+";base64,"); !ok || got.Data[i].B64JSON != "" {
			t.Fatalf("image %d: got url %.40q and b64_json %.20q, want only a data URL of image/%s", i, got.Data[i].URL, got.Data[i].B64JSON, format)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("image %d: %v", i, err)
	}
	return raw
}

func TestImageGenerations(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	const prompt = "A cute baby sea otter"
	text := sim.CountTokens(prompt)
	tests := []struct {
		name        string
		req         map[string]any
		wantN       int
		wantFormat  string
		wantURL     bool
		wantQuality string // "" when the answer has no quality, output_format or usage
		wantOutput  int
	}{
		{name: "default", req: map[string]any{"prompt": prompt}, wantN: 1, wantFormat: "png", wantQuality: "medium", wantOutput: 1056},
		{name: "n-3-low", req: map[string]any{"model": "gpt-image-1", "prompt": prompt, "n": 3, "quality": "low"},
			wantN: 3, wantFormat: "png", wantQuality: "low", wantOutput: 3 * 272},
		{name: "jpeg-high", req: map[string]any{"prompt": prompt, "output_format": "jpeg", "quality": "high", "size": "1536x1024"},
			wantN: 1, wantFormat: "jpeg", wantQuality: "high", wantOutput: 4160},
		{name: "webp", req: map[string]any{"prompt": prompt, "output_format": "webp", "n": 2, "background": "transparent"},
			wantN: 2, wantFormat: "webp", wantQuality: "medium", wantOutput: 2 * 1056},
		{name: "url", req: map[string]any{"prompt": prompt, "response_format": "url", "size": "auto"},
			wantN: 1, wantFormat: "png", wantURL: true, wantQuality: "medium", wantOutput: 1056},
		{name: "dall-e-2-url-by-default", req: map[string]any{"model": "dall-e-2", "prompt": prompt, "n": 2},
			wantN: 2, wantFormat: "png", wantURL: true},
		{name: "dall-e-3-b64", req: map[string]any{"model": "dall-e-3", "prompt": prompt, "response_format": "b64_json", "quality": "hd"},
			wantN: 1, wantFormat: "png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := imagesOf(t, srv, "/v1/images/generations", mustJSON(t, tt.req))
			if len(got.Data) != tt.wantN {
				t.Fatalf("got %d images, want %d", len(got.Data), tt.wantN)
			}
			for i, d := range got.Data {
				if (d.URL != "") != tt.wantURL {
					t.Errorf("image %d: got url %.30q, want a url %v", i, d.URL, tt.wantURL)
				}
				decodeImage(t, tt.wantFormat, imageBytes(t, got, i, tt.wantFormat))
				if wantRevised := tt.req["model"] == "dall-e-3"; (d.RevisedPrompt == prompt) != wantRevised {
					t.Errorf("image %d: got revised_prompt %q, want the prompt %v", i, d.RevisedPrompt, wantRevised)
				}
			}
			if tt.wantQuality == "" {
				if got.Usage != nil || got.OutputFormat != "" || got.Quality != "" {
					t.Errorf("got usage %+v output_format %q quality %q, want none, as DALL·E answers", got.Usage, got.OutputFormat, got.Quality)
				}
				return
			}
			if got.OutputFormat != tt.wantFormat || got.Quality != tt.wantQuality {
				t.Errorf("got output_format %q quality %q, want %q, %q", got.OutputFormat, got.Quality, tt.wantFormat, tt.wantQuality)
			}
			want := &imagesUsage{InputTokens: text, OutputTokens: tt.wantOutput, TotalTokens: text + tt.wantOutput}
			want.InputTokensDetails.TextTokens = text
			if diff := cmp.Diff(want, got.Usage); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestImageEdits(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	const prompt = "Add a watercolor effect"
	const dataURL = "data:image/png;base64,iVBORw0KGgo="
	text := sim.CountTokens(prompt)
	tests := []struct {
		name       string
		req        map[string]any
		wantImages int // input images, the mask included
	}{
		{"one-url", map[string]any{"images": []any{map[string]any{"image_url": "https://example.com/a.png"}}}, 1},
		{"data-url-file-id-and-mask", map[string]any{"images": []any{map[string]any{"image_url": dataURL}, map[string]any{"file_id": "file-abc"}},
			"mask": map[string]any{"file_id": "file-mask"}}, 3},
		{"older-single-image-object", map[string]any{"image": map[string]any{"image_url": dataURL}}, 1},
		{"older-single-image-string", map[string]any{"image": dataURL, "n": 2}, 1},
		{"older-image-array", map[string]any{"image": []any{dataURL, map[string]any{"file_id": "file-1"}}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := map[string]any{"model": "gpt-image-1.5", "prompt": prompt}
			for k, v := range tt.req {
				req[k] = v
			}
			got := imagesOf(t, srv, "/v1/images/edits", mustJSON(t, req))
			n := 1
			if v, ok := tt.req["n"].(int); ok {
				n = v
			}
			if len(got.Data) != n {
				t.Fatalf("got %d images, want %d", len(got.Data), n)
			}
			for i := range got.Data {
				decodeImage(t, "png", imageBytes(t, got, i, "png"))
			}
			want := &imagesUsage{InputTokens: text + 85*tt.wantImages, OutputTokens: 1056 * n, TotalTokens: text + 85*tt.wantImages + 1056*n}
			want.InputTokensDetails.TextTokens, want.InputTokensDetails.ImageTokens = text, 85*tt.wantImages
			if diff := cmp.Diff(want, got.Usage); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestImagesDeterminism(t *testing.T) {
	t.Parallel()
	// Two servers with different seeds: the images depend on the request only.
	_, a := start(t, sim.Options{Seed: 1})
	_, b := start(t, sim.Options{Seed: 2})
	images := func(t *testing.T, srv *httptest.Server, path string, req map[string]any) []string {
		t.Helper()
		got := imagesOf(t, srv, path, mustJSON(t, req))
		var out []string
		for _, d := range got.Data {
			out = append(out, d.B64JSON)
		}
		return out
	}
	const gen, edit = "/v1/images/generations", "/v1/images/edits"
	img := func(url string) []any { return []any{map[string]any{"image_url": url}} }
	x := images(t, a, gen, map[string]any{"prompt": "a fox", "n": 3})
	if diff := cmp.Diff(x, images(t, b, gen, map[string]any{"prompt": "a fox", "n": 3})); diff != "" {
		t.Errorf("same request on two servers (-first +second):\n%s", diff)
	}
	if x[0] == x[1] || x[1] == x[2] {
		t.Errorf("got images %v, want each of n drawn on its own", x)
	}
	if y := images(t, b, gen, map[string]any{"prompt": "a hound"}); y[0] == x[0] {
		t.Errorf("different prompts: got the same image, want different ones")
	}
	e1 := images(t, a, edit, map[string]any{"prompt": "a fox", "images": img("https://example.com/1.png")})
	e2 := images(t, b, edit, map[string]any{"prompt": "a fox", "images": img("https://example.com/1.png")})
	e3 := images(t, b, edit, map[string]any{"prompt": "a fox", "images": img("https://example.com/2.png")})
	if e1[0] != e2[0] || e1[0] == e3[0] || e1[0] == x[0] {
		t.Errorf("edits: got same-request %v, other-image %v, generation %v, want true, false, false",
			e1[0] == e2[0], e1[0] == e3[0], e1[0] == x[0])
	}
}

func TestImageFormatsAgree(t *testing.T) {
	t.Parallel()
	// The format changes the encoding, not the picture: JPEG, being lossy, only nearly.
	_, srv := start(t, sim.Options{})
	colour := func(format string) [3]uint8 {
		got := imagesOf(t, srv, "/v1/images/generations", `{"prompt":"a fox","output_format":"`+format+`"}`)
		return decodeImage(t, format, imageBytes(t, got, 0, format))
	}
	p, j := colour("png"), colour("jpeg")
	for i := range p {
		if d := int(p[i]) - int(j[i]); d < -8 || d > 8 {
			t.Errorf("got PNG colour %v and JPEG colour %v, want them within 8", p, j)
			break
		}
	}
}

func TestImageGenerationsErrors(t *testing.T) {
	t.Parallel()
	checkErrors(t, "/v1/images/generations", []errorCase{
		{name: "bad-json", body: `{"prompt":"a`},
		{name: "not-an-object", body: `"a fox"`},
		{name: "no-prompt", body: `{"model":"gpt-image-1"}`, wantParam: "prompt"},
		{name: "empty-prompt", body: `{"prompt":""}`, wantParam: "prompt"},
		{name: "prompt-number", body: `{"prompt":7}`, wantParam: "prompt"},
		{name: "n-zero", body: `{"prompt":"a","n":0}`, wantParam: "n"},
		{name: "n-11", body: `{"prompt":"a","n":11}`, wantParam: "n"},
		{name: "n-string", body: `{"prompt":"a","n":"2"}`, wantParam: "n"},
		{name: "bad-size", body: `{"prompt":"a","size":"big"}`, wantParam: "size"},
		{name: "zero-size", body: `{"prompt":"a","size":"0x1024"}`, wantParam: "size"},
		{name: "bad-quality", body: `{"prompt":"a","quality":"ultra"}`, wantParam: "quality"},
		{name: "bad-response-format", body: `{"prompt":"a","response_format":"file"}`, wantParam: "response_format"},
		{name: "bad-output-format", body: `{"prompt":"a","output_format":"gif"}`, wantParam: "output_format"},
		{name: "output-compression-101", body: `{"prompt":"a","output_compression":101}`, wantParam: "output_compression"},
		{name: "transparent-jpeg", body: `{"prompt":"a","background":"transparent","output_format":"jpeg"}`, wantParam: "background"},
		{name: "stream", body: `{"prompt":"a","stream":true}`, wantParam: "stream"},
	})
}

func TestImageEditsErrors(t *testing.T) {
	t.Parallel()
	checkErrors(t, "/v1/images/edits", []errorCase{
		{name: "bad-json", body: `{"prompt":`},
		{name: "no-prompt", body: `{"images":[{"image_url":"https://example.com/a.png"}]}`, wantParam: "prompt"},
		{name: "no-images", body: `{"prompt":"a"}`, wantParam: "images"},
		{name: "empty-images", body: `{"prompt":"a","images":[]}`, wantParam: "images"},
		{name: "images-object", body: `{"prompt":"a","images":{"image_url":"https://example.com/a.png"}}`, wantParam: "images"},
		{name: "images-of-strings", body: `{"prompt":"a","images":["https://example.com/a.png"]}`, wantParam: "images[0]"},
		{name: "ref-with-both", body: `{"prompt":"a","images":[{"image_url":"https://example.com/a.png","file_id":"file-1"}]}`, wantParam: "images[0]"},
		{name: "ref-with-neither", body: `{"prompt":"a","images":[{"image_url":"https://example.com/a.png"},{}]}`, wantParam: "images[1]"},
		{name: "ref-not-a-url", body: `{"prompt":"a","images":[{"image_url":"a.png"}]}`, wantParam: "images[0].image_url"},
		{name: "image-number", body: `{"prompt":"a","image":7}`, wantParam: "image"},
		{name: "seventeen-images", body: `{"prompt":"a","images":[` + strings.Repeat(`{"file_id":"f"},`, 16) + `{"file_id":"f"}]}`, wantParam: "images"},
		{name: "bad-mask", body: `{"prompt":"a","images":[{"file_id":"f"}],"mask":{}}`, wantParam: "mask"},
		{name: "n-11", body: `{"prompt":"a","images":[{"file_id":"f"}],"n":11}`, wantParam: "n"},
	})
}
