package httpapi

import (
	"bytes"
	"io"
	"mime/multipart"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// formPartResult is a part read whole: what the upload handler uses of it.
type formPartResult struct {
	Name, Filename, Data string
}

// readMime reads every part with mime/multipart, stopping at the first error, and
// reports whether it reached the end cleanly: at a final boundary. (A body cut off
// inside a part's header also ends its NextPart with a bare io.EOF, as if cleanly;
// formReader reports that as the error it is, so it does not count as clean here.)
func readMime(body []byte, boundary string) ([]formPartResult, bool) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	final := "--" + boundary + "--"
	var out []formPartResult
	for {
		p, err := mr.NextPart()
		if err == io.EOF { // a wrapped io.EOF is an error: the body ended too soon
			// mime/multipart also ends with a plain io.EOF when the body stops inside
			// a part's header: the end is clean only if the last boundary line is the
			// final one.
			last := bytes.LastIndex(body, []byte("--"+boundary))
			return out, last >= 0 && bytes.HasPrefix(body[last:], []byte(final)) && (last == 0 || body[last-1] == '\n')
		}
		if err != nil {
			return out, false
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return out, false
		}
		out = append(out, formPartResult{p.FormName(), p.FileName(), string(data)})
	}
}

// readForm is readMime for formReader over src.
func readForm(src io.Reader, boundary string, size int) (parts []formPartResult, ok bool) {
	f := newFormReader(src, boundary, size)
	for {
		p, err := f.NextPart()
		if err == io.EOF {
			return parts, true
		}
		if err != nil {
			return parts, false
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return parts, false
		}
		parts = append(parts, formPartResult{p.FormName(), p.FileName(), string(data)})
	}
}

// writeForm builds a body the way clients do, with multipart.Writer.
func writeForm(tb testing.TB, boundary string, parts ...formPartResult) []byte {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.SetBoundary(boundary); err != nil {
		tb.Fatal(err)
	}
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.Filename != "" {
			w, err = mw.CreateFormFile(p.Name, p.Filename)
		} else {
			w, err = mw.CreateFormField(p.Name)
		}
		if err != nil {
			tb.Fatal(err)
		}
		io.WriteString(w, p.Data)
	}
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// sources returns readers of body that hand it over whole, a byte at a time, and in
// halves, so parts straddle the buffer's refills every which way.
func sources(body []byte) map[string]io.Reader {
	return map[string]io.Reader{
		"whole":    bytes.NewReader(body),
		"one-byte": iotest.OneByteReader(bytes.NewReader(body)),
		"half":     iotest.HalfReader(bytes.NewReader(body)),
		"data-err": iotest.DataErrReader(bytes.NewReader(body)),
	}
}

func TestFormReader(t *testing.T) {
	t.Parallel()
	const b = "XbOuNdArY"
	big := strings.Repeat(`{"custom_id":"x","body":{"m":"\r\n--XbOuNdArYz"}}`+"\n", 20000) // ~1 MB, boundary look-alikes inside
	tests := []struct {
		name string
		body []byte
	}{
		{"fields-and-file", writeForm(t, b, formPartResult{"purpose", "", "batch"}, formPartResult{"file", "in.jsonl", "a\nb\n"})},
		{"file-first", writeForm(t, b, formPartResult{"file", "dir/in.jsonl", "x"}, formPartResult{"purpose", "", "batch"})},
		{"empty-data", writeForm(t, b, formPartResult{"file", "e.jsonl", ""}, formPartResult{"purpose", "", ""})},
		{"look-alikes", writeForm(t, b, formPartResult{"file", "f", "\r\n--XbOuNdArYX\r\n--XbOuNdArY-x\r\n--XbOu\r\n"})},
		{"big-file", writeForm(t, b, formPartResult{"purpose", "", "batch"}, formPartResult{"file", "big.jsonl", big})},
		{"preamble", []byte("ignored\r\nlines\r\n--" + b + "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--" + b + "--\r\n")},
		{"bare-newlines", []byte("--" + b + "\nContent-Disposition: form-data; name=\"a\"\n\nv\n--" + b + "--\n")},
		{"lwsp-after-boundary", []byte("--" + b + " \t\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--" + b + "--  ")},
		{"data-starts-with-boundary", []byte("--" + b + "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--" + b + "--\r\n")},
		{"continued-header", []byte("--" + b + "\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nv\r\n--" + b + "--\r\n")},
		{"truncated", writeForm(t, b, formPartResult{"file", "f", "data"})[:60]},
		{"no-final-boundary", []byte("--" + b + "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n")},
		{"garbage-between", []byte("--" + b + "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--" + b + "\r\n\r\nw\r\n" + "junk\r\n--" + b + "--")},
		{"bad-header", []byte("--" + b + "\r\nno colon here\r\n\r\nv\r\n--" + b + "--\r\n")},
		{"attachment-filename", []byte("--" + b + "\r\nContent-Disposition: attachment; name=\"a\"; filename=\"d/f.txt\"\r\n\r\nv\r\n--" + b + "--\r\n")},
		{"space-before-colon", []byte("--" + b + "\r\nContent-Disposition : form-data; name=\"a\"\r\nX Y: z\r\n\r\nv\r\n--" + b + "--\r\n")},
		{"empty", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want, wantOK := readMime(tc.body, b)
			for name, src := range sources(tc.body) {
				got, ok := readForm(src, b, 4096)
				if diff := cmp.Diff(want, got); diff != "" || ok != wantOK {
					t.Errorf("%s: parts (-mime +form) %s; clean end got %t, mime %t", name, diff, ok, wantOK)
				}
			}
		})
	}
}

// FuzzFormReader checks formReader against mime/multipart: on any body, when
// mime/multipart reads every part and ends cleanly, formReader reads the same parts and
// ends cleanly; when mime/multipart fails, formReader reads at least the parts it read
// first, the same. (formReader takes lines up to its buffer's size, where
// mime/multipart stops at 4 KiB, does not decode quoted-printable parts, and fails a
// body cut off inside a part's header, which mime/multipart ends quietly.)
func FuzzFormReader(f *testing.F) {
	const b = "b0uNd"
	f.Add([]byte("--"+b+"\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--"+b+"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n{\"a\":1}\n\r\n--"+b+"--\r\n"), b, uint8(0))
	f.Add([]byte("pre\r\n--"+b+"\nContent-Disposition: form-data; name=\"x\"\n\n--"+b+"-\n--"+b+"--"), b, uint8(1))
	f.Add([]byte("--"+b+"\r\nA: b\r\n c\r\nContent-Disposition: form-data;\r\n\tname=\"f\"\r\n\r\n\r\n--"+b+"x\r\n--"+b+"  \r\n\r\n\r\n--"+b+"--"), b, uint8(2))
	f.Add([]byte("--x\r\n\r\n\r\n--x--"), "x", uint8(3))
	f.Fuzz(func(t *testing.T, body []byte, boundary string, how uint8) {
		if boundary == "" || strings.ContainsAny(boundary, "\r\n") || len(boundary) > 70 ||
			bytes.Contains(bytes.ToLower(body), []byte("quoted-printable")) {
			t.Skip()
		}
		for _, line := range bytes.Split(body, []byte("\n")) {
			if len(line) >= 4000 {
				t.Skip() // mime/multipart refuses lines past its 4 KiB buffer
			}
		}
		if bytes.Count(body, []byte("--"+boundary)) > maxFormParts || len(body) > maxDisposition {
			t.Skip() // formReader's limits on parts and Content-Disposition, which mime/multipart lacks
		}
		want, wantOK := readMime(body, boundary)
		var src io.Reader = bytes.NewReader(body)
		switch how % 3 {
		case 1:
			src = iotest.OneByteReader(src)
		case 2:
			src = iotest.HalfReader(src)
		}
		got, ok := readForm(src, boundary, 4096)
		if wantOK && !ok {
			t.Fatalf("mime/multipart ended cleanly with %d parts, formReader failed after %d", len(want), len(got))
		}
		if len(got) < len(want) || !cmp.Equal(want, got[:len(want)]) {
			t.Fatalf("parts (-mime +form):\n%s", cmp.Diff(want, got))
		}
		if wantOK && len(got) != len(want) {
			t.Fatalf("formReader read %d parts, mime/multipart %d", len(got), len(want))
		}
	})
}
