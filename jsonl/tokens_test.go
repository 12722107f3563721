package jsonl_test

import (
	"encoding/json"
	"testing"

	"github.com/sluice-batch/sluice/jsonl"
)

func TestLimitTokens(t *testing.T) {
	t.Parallel()
	chat := jsonl.TokenFields["/v1/chat/completions"]
	for _, tc := range []struct {
		name, body   string
		def, ceiling int
		want         string
		limit        int
		fields       []string
		add          string
	}{
		{"default-added", `{"model":"m","messages":[]}`, 256, 0, `{"max_tokens":256,"model":"m","messages":[]}`, 256, chat.Fields, chat.Add},
		{"default-to-empty-object", `{}`, 16, 0, `{"max_tokens":16}`, 16, chat.Fields, chat.Add},
		{"default-capped", `{"messages":[]}`, 500, 100, `{"max_tokens":100,"messages":[]}`, 100, chat.Fields, chat.Add},
		{"kept-under-ceiling", `{"max_tokens":50,"messages":[]}`, 256, 100, `{"max_tokens":50,"messages":[]}`, 50, chat.Fields, chat.Add},
		{"clamped", `{"max_tokens": 9000 ,"messages":[]}`, 0, 100, `{"max_tokens": 100 ,"messages":[]}`, 100, chat.Fields, chat.Add},
		{"both-fields-clamped", `{"max_completion_tokens":5000,"max_tokens":7000}`, 0, 1000, `{"max_completion_tokens":1000,"max_tokens":1000}`, 1000, chat.Fields, chat.Add},
		{"other-field-counts", `{"max_completion_tokens":64}`, 256, 0, `{"max_completion_tokens":64}`, 64, chat.Fields, chat.Add},
		{"null-left", `{"max_tokens":null}`, 256, 100, `{"max_tokens":null}`, 0, chat.Fields, chat.Add},
		{"nothing-asked", `{"messages":[]}`, 0, 0, `{"messages":[]}`, 0, chat.Fields, chat.Add},
		{"nested-ignored", `{"metadata":{"max_tokens":9000}}`, 32, 100, `{"max_tokens":32,"metadata":{"max_tokens":9000}}`, 32, chat.Fields, chat.Add},
		{"responses", `{"input":"hi","max_output_tokens":4096}`, 0, 512, `{"input":"hi","max_output_tokens":512}`, 512,
			jsonl.TokenFields["/v1/responses"].Fields, jsonl.TokenFields["/v1/responses"].Add},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, limit, err := jsonl.LimitTokens([]byte(tc.body), tc.fields, tc.add, tc.def, tc.ceiling)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || limit != tc.limit {
				t.Errorf("got %s (limit %d), want %s (limit %d)", got, limit, tc.want, tc.limit)
			}
			if !json.Valid(got) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
	if _, _, err := jsonl.LimitTokens([]byte(`[1]`), chat.Fields, chat.Add, 1, 1); err == nil {
		t.Error("an array body: want an error")
	}
}
