package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
)

// idempotencyWindow is how long the first answer to an Idempotency-Key is kept.
const idempotencyWindow = 24 * time.Hour

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

// replayedHeaders are the answer's headers a repeat gets back.
var replayedHeaders = []string{"Content-Type", "Location", "deployment-enqueued-tokens", "deployment-maximum-enqueued-tokens"}

// idempotent runs a create at most once per project, Idempotency-Key and route for 24 hours: a
// repeat gets the first answer again, with Idempotent-Replayed: true, and creates
// nothing. Only a success is kept: after a refusal or a failure (a 400
// token_limit_exceeded, say) the record is dropped, so that a retry with the same key
// runs again, as a client backing off expects. A repeat while the first still runs
// gets 409, which the SDKs retry; a key reused for another request gets 400. A JSON
// body is part of what the key stands for; an upload's content is not (its multipart
// framing differs from try to try), only its route.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > maxIdempotencyKey {
			writeError(w, r, s.log, sluice.Errorf(sluice.KindInvalid, "The Idempotency-Key header is longer than %d characters.", maxIdempotencyKey))
			return
		}
		fp := sha256.New()
		io.WriteString(fp, r.Method+" "+r.URL.Path+"\n")
		if ct := r.Header.Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "application/json") {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBytes))
			if err != nil {
				writeError(w, r, s.log, sluice.Errorf(sluice.KindTooLarge, "The request body is larger than %d bytes.", maxJSONBytes))
				return
			}
			fp.Write(body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		ctx := context.WithoutCancel(r.Context())
		now := time.Now().UTC()
		// Keys are the caller's project's: another project's same key is another key,
		// and never replays an answer that is not its own.
		project := sluice.ProjectName(callerOf(r).Project)
		rec := &sluice.IdempotentRecord{Key: project + "\x00" + r.Method + " " + r.URL.Path + "\x00" + key, Fingerprint: hex.EncodeToString(fp.Sum(nil)), CreatedAt: now}
		first, started, err := s.store.StartIdempotent(ctx, rec, now.Add(-idempotencyWindow))
		switch {
		case err != nil:
			s.writeRetryError(w, r, err)
			return
		case !started && first.Fingerprint != rec.Fingerprint:
			writeError(w, r, s.log, sluice.Errorf(sluice.KindInvalid,
				"The Idempotency-Key %q was used for a different request in the last 24 hours; use a new key for a new request.", key).
				WithCode("idempotency_key_reused"))
			return
		case !started && first.Status == 0:
			w.Header().Set("Retry-After", "1")
			w.Header().Set("x-should-retry", "true")
			writeJSON(w, http.StatusConflict, map[string]errorBody{"error": {
				Message: "A request with this Idempotency-Key is still running; retry shortly to get its answer.",
				Type:    "invalid_request_error", Code: nullable("idempotency_key_in_use"),
			}})
			return
		case !started:
			for k, v := range first.Header {
				w.Header().Set(k, v)
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(first.Status)
			_, _ = w.Write(first.Body)
			return
		}
		rw := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rw, r)
		if rw.status < 200 || rw.status > 299 {
			if err := s.store.DeleteIdempotent(ctx, rec.Key); err != nil {
				s.log.ErrorContext(ctx, "drop idempotency record", "err", err)
			}
			return
		}
		rec.Status, rec.Body, rec.Header = rw.status, rw.body.Bytes(), map[string]string{}
		for _, h := range replayedHeaders {
			if v := w.Header().Get(h); v != "" {
				rec.Header[h] = v
			}
		}
		if err := s.store.FinishIdempotent(ctx, rec); err != nil {
			s.log.ErrorContext(ctx, "keep idempotent answer", "status", strconv.Itoa(rec.Status), "err", err)
		}
	})
}

// recorder writes an answer through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}
