package jsonl_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sluice-batch/sluice/jsonl"
)

// chatLine is a realistic chat request line of about 1 KB.
func chatLine(i int) string {
	return fmt.Sprintf(`{"custom_id":"request-%06d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant that summarises customer support tickets in two sentences, naming the product and the customer's main complaint."},{"role":"user","content":"Ticket #%d: Hello, I bought the X200 blender three weeks ago and since last Tuesday it makes a grinding noise whenever I use the pulse setting. I have tried cleaning the blade assembly as the manual suggests but the noise is still there. Could you tell me whether this is covered by the warranty and how I can send it in for repair? I would also like to know if a replacement jar is available separately, as mine has a small crack near the handle. Thanks, Jordan"}],"temperature":0.2,"max_tokens":200,"response_format":{"type":"text"}}}`, i, i)
}

// BenchmarkScanner scans a file of 10,000 chat lines written in 32 KiB pieces, with
// no EntryFunc: the validator, the checks and the custom_id set.
func BenchmarkScanner(b *testing.B) {
	benchmarkScanner(b, nil)
}

// BenchmarkScannerEntries is BenchmarkScanner with an EntryFunc that keeps nothing;
// each Entry costs its CustomID string.
func BenchmarkScannerEntries(b *testing.B) {
	benchmarkScanner(b, func(jsonl.Entry) error { return nil })
}

func benchmarkScanner(b *testing.B, entryFunc func(jsonl.Entry) error) {
	var buf bytes.Buffer
	for i := range 10000 {
		buf.WriteString(chatLine(i))
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := jsonl.NewScanner(&jsonl.ScanOptions{EntryFunc: entryFunc})
		for p := data; len(p) > 0; {
			n := min(32<<10, len(p))
			_, _ = s.Write(p[:n])
			p = p[n:]
		}
		if sum, err := s.Close(); err != nil || len(sum.Problems) != 0 {
			b.Fatalf("got problems %+v and error %v, want none", sum.Problems, err)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	line := []byte(chatLine(1))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jsonl.ParseRequest(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetModel(b *testing.B) {
	r, err := jsonl.ParseRequest([]byte(chatLine(1)))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("replace", func(b *testing.B) {
		b.SetBytes(int64(len(r.Body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonl.SetModel(r.Body, "meta-llama/Llama-3.1-8B-Instruct"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		b.SetBytes(int64(len(r.Body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonl.SetModel(r.Body, "gpt-4o-mini"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppendResponse(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-abc123","object":"chat.completion","created":1711471533,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"The customer reports a grinding noise from their X200 blender on the pulse setting and asks about warranty repair. They also want a replacement jar because theirs is cracked."},"finish_reason":"stop"}],"usage":{"prompt_tokens":160,"completion_tokens":38,"total_tokens":198}}`)
	pretty := []byte("{\n  \"id\": \"chatcmpl-abc123\",\n  \"choices\": [\n    {\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"Hi.\"}}\n  ]\n}\n")
	for _, bc := range []struct {
		name string
		body []byte
	}{{"compact", body}, {"pretty", pretty}} {
		b.Run(bc.name, func(b *testing.B) {
			dst := make([]byte, 0, 4096)
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				dst = jsonl.AppendResponse(dst[:0], "batch_req_0123456789abcdef0123456789abcdef", "request-000001", 200, "req_0123456789", bc.body)
			}
		})
	}
}
