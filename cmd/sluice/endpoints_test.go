package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Every endpoint of the Batch API runs end to end against the built-in simulator, and
// each line's answer is the endpoint's object.
func TestEveryEndpoint(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	for _, tc := range []struct {
		endpoint, body string
		object         string // the answer's object member; "" when it has none
		member         string // a member every answer has
	}{
		{"/v1/responses", `{"model":"gpt-4o-mini","input":"Say hi","max_output_tokens":32}`, "response", "output"},
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}]}`, "chat.completion", "choices"},
		{"/v1/embeddings", `{"model":"gpt-4o-mini","input":["a","b"]}`, "list", "data"},
		{"/v1/completions", `{"model":"gpt-4o-mini","prompt":"Say hi","max_tokens":8}`, "text_completion", "choices"},
		{"/v1/moderations", `{"model":"gpt-4o-mini","input":["fine text","more text"]}`, "", "results"},
		{"/v1/images/generations", `{"model":"gpt-4o-mini","prompt":"a red fox","n":1}`, "", "data"},
		{"/v1/images/edits", `{"model":"gpt-4o-mini","prompt":"make it blue","images":[{"image_url":"https://example.com/fox.png"}]}`, "", "data"},
		{"/v1/videos", `{"model":"gpt-4o-mini","prompt":"a fox running"}`, "video", "status"},
	} {
		t.Run(strings.TrimPrefix(tc.endpoint, "/v1/"), func(t *testing.T) {
			t.Parallel()
			var in strings.Builder
			for i := range 3 {
				fmt.Fprintf(&in, `{"custom_id":"r%d","method":"POST","url":"%s","body":%s}`+"\n", i, tc.endpoint, tc.body)
			}
			f := c.mustUpload(in.String())
			b := c.waitBatch(c.mustCreateBatch(f.ID, tc.endpoint).ID, terminal)
			if b.Status != "completed" || b.RequestCounts.Completed != 3 {
				errs := ""
				if b.ErrorFileID != nil {
					errs = c.content(*b.ErrorFileID)
				}
				t.Fatalf("batch %s %+v, want completed with 3 lines: %v %s", b.Status, b.RequestCounts, b.Errors, errs)
			}
			for _, r := range parseResults(t, c.content(*b.OutputFileID)) {
				var body map[string]any
				if r.Response == nil || r.Response.StatusCode != 200 || json.Unmarshal(r.Response.Body, &body) != nil {
					t.Fatalf("result %+v", r)
				}
				if tc.object != "" && body["object"] != tc.object {
					t.Errorf("%s: object %v, want %s", r.CustomID, body["object"], tc.object)
				}
				if _, ok := body[tc.member]; !ok {
					t.Errorf("%s: answer without %s: %s", r.CustomID, tc.member, r.Response.Body)
				}
			}
		})
	}
}
