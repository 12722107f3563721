package sim_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

type videoResource struct {
	ID                 string          `json:"id"`
	Object             string          `json:"object"`
	Model              string          `json:"model"`
	Status             string          `json:"status"`
	Progress           int             `json:"progress"`
	CreatedAt          int64           `json:"created_at"`
	CompletedAt        int64           `json:"completed_at"`
	ExpiresAt          int64           `json:"expires_at"`
	Prompt             string          `json:"prompt"`
	Size               string          `json:"size"`
	Seconds            string          `json:"seconds"`
	RemixedFromVideoID json.RawMessage `json:"remixed_from_video_id"`
	Error              json.RawMessage `json:"error"`
}

func TestVideos(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{Model: "sora-2"})
	tests := []struct {
		name        string
		req         map[string]any
		wantModel   string
		wantSeconds string
		wantSize    string
	}{
		{"defaults", map[string]any{"prompt": "A calico cat playing a piano on stage"}, "sora-2", "4", "720x1280"},
		{"every-field", map[string]any{"model": "sora-2-pro", "prompt": "Waves", "seconds": "12", "size": "1792x1024",
			"input_reference": map[string]any{"image_url": "https://example.com/first-frame.png"}}, "sora-2-pro", "12", "1792x1024"},
		{"file-reference", map[string]any{"prompt": "Waves", "seconds": "8", "input_reference": map[string]any{"file_id": "file-1"}},
			"sora-2", "8", "720x1280"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got videoResource
			b := postJSON(t, srv, "/v1/videos", mustJSON(t, tt.req), &got)
			// Every member VideoResource requires.
			members(t, "video", b, "id", "object", "model", "status", "progress", "created_at", "completed_at", "expires_at",
				"prompt", "size", "seconds", "remixed_from_video_id", "error")
			if !strings.HasPrefix(got.ID, "video_") || got.Object != "video" || got.Model != tt.wantModel || got.Status != "completed" || got.Progress != 100 {
				t.Errorf("got id %q object %q model %q status %q progress %d, want video_…, video, %s, completed, 100",
					got.ID, got.Object, got.Model, got.Status, got.Progress, tt.wantModel)
			}
			if got.Prompt != tt.req["prompt"] || got.Seconds != tt.wantSeconds || got.Size != tt.wantSize {
				t.Errorf("got prompt %q seconds %q size %q, want %q, %q, %q", got.Prompt, got.Seconds, got.Size, tt.req["prompt"], tt.wantSeconds, tt.wantSize)
			}
			if string(got.Error) != "null" || string(got.RemixedFromVideoID) != "null" {
				t.Errorf("got error %s remixed_from_video_id %s, want null, null", got.Error, got.RemixedFromVideoID)
			}
			if got.CreatedAt <= 0 || got.CompletedAt < got.CreatedAt || got.ExpiresAt != got.CompletedAt+int64(time.Hour/time.Second) {
				t.Errorf("got created_at %d completed_at %d expires_at %d, want completed_at after created_at and expires_at an hour later",
					got.CreatedAt, got.CompletedAt, got.ExpiresAt)
			}
		})
	}
}

func TestVideosCompletedAtCountsTheWait(t *testing.T) {
	t.Parallel()
	// 4 seconds of video are 4000 tokens: at 4000 tokens/s, the answer waits exactly 1s,
	// so completed_at is created_at + 1 whatever the clock's fraction of a second.
	s, srv := start(t, sim.Options{TokensPerSecond: 4000})
	var got videoResource
	postJSON(t, srv, "/v1/videos", `{"prompt":"Waves"}`, &got)
	if d := got.CompletedAt - got.CreatedAt; d != 1 {
		t.Errorf("got completed_at %d s after created_at, want 1", d)
	}
	if st := s.Stats(); st.Completed != 1 {
		t.Errorf("got %d completed, want 1", st.Completed)
	}
}

func TestVideosErrors(t *testing.T) {
	t.Parallel()
	checkErrors(t, "/v1/videos", []errorCase{
		{name: "bad-json", body: `{"prompt"`},
		{name: "no-prompt", body: `{"model":"sora-2"}`, wantParam: "prompt"},
		{name: "empty-prompt", body: `{"prompt":""}`, wantParam: "prompt"},
		{name: "seconds-number", body: `{"prompt":"a","seconds":4}`, wantParam: "seconds"},
		{name: "seconds-5", body: `{"prompt":"a","seconds":"5"}`, wantParam: "seconds"},
		{name: "bad-size", body: `{"prompt":"a","size":"1024x1024"}`, wantParam: "size"},
		{name: "reference-string", body: `{"prompt":"a","input_reference":"https://example.com/a.png"}`, wantParam: "input_reference"},
		{name: "reference-with-both", body: `{"prompt":"a","input_reference":{"image_url":"https://example.com/a.png","file_id":"f"}}`, wantParam: "input_reference"},
	})
}
