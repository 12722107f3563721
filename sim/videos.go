package sim

import (
	"encoding/json"
	"strconv"
	"time"
)

// Video costs and lifetimes.
const (
	videoTokensPerSecond = 1000      // the generation time of a second of video, in tokens
	videoExpiry          = time.Hour // from completed_at to expires_at
)

type videoRequest struct {
	Model          string          `json:"model"`
	Prompt         *string         `json:"prompt"`
	Seconds        string          `json:"seconds"`
	Size           string          `json:"size"`
	InputReference json.RawMessage `json:"input_reference"`
}

// video appends the video job answering a /v1/videos body to b, and returns it with the
// clip's generation tokens. The job is completed when it is answered: the answer waits
// for it. The simulator renders no video, so there is no content to download.
func (s *Server) video(b, body []byte, model, id string) ([]byte, int, *apiError) {
	var req videoRequest
	if e := decode(body, &req); e != nil {
		return b, 0, e
	}
	if req.Prompt == nil || *req.Prompt == "" {
		return b, 0, invalid("prompt", "Missing required parameter: 'prompt'. It must be a non-empty string.")
	}
	switch req.Seconds {
	case "":
		req.Seconds = "4"
	case "4", "8", "12", "16", "20":
	default:
		return b, 0, invalid("seconds", "Invalid value: '"+req.Seconds+"'. Supported values are: '4', '8', '12', '16', and '20'.")
	}
	switch req.Size {
	case "":
		req.Size = "720x1280"
	case "720x1280", "1280x720", "1024x1792", "1792x1024", "1080x1920", "1920x1080":
	default:
		return b, 0, invalid("size", "Invalid value: '"+req.Size+"'. Supported values are: '720x1280', '1280x720', '1024x1792', '1792x1024', '1080x1920', and '1920x1080'.")
	}
	if !isNull(req.InputReference) {
		if _, e := parseImageRef(req.InputReference, "input_reference", false); e != nil {
			return b, 0, e
		}
	}
	if req.Model != "" {
		model = req.Model
	}
	secs, _ := strconv.Atoi(req.Seconds)
	tokens := secs * videoTokensPerSecond

	now := time.Now()
	done := now.Add(s.delay(tokens))
	b = append(b, `{"id":"video_`...)
	b = append(b, id...)
	b = append(b, `","object":"video","created_at":`...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, `,"completed_at":`...)
	b = strconv.AppendInt(b, done.Unix(), 10)
	b = append(b, `,"error":null,"expires_at":`...)
	b = strconv.AppendInt(b, done.Add(videoExpiry).Unix(), 10)
	b = append(b, `,"model":`...)
	b = appendString(b, model)
	b = append(b, `,"progress":100,"prompt":`...)
	b = appendString(b, *req.Prompt)
	b = append(b, `,"remixed_from_video_id":null,"seconds":"`...)
	b = append(b, req.Seconds...)
	b = append(b, `","size":"`...)
	b = append(b, req.Size...)
	return append(b, `","status":"completed"}`+"\n"...), tokens, nil
}
