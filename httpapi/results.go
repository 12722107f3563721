package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-batch/sluice"
)

// cursorHeader carries the cursor to read the results on from: the output and error
// offsets after what the answer holds.
const cursorHeader = "Sluice-Results-Cursor"

// handleBatchResults streams the result lines a batch has committed so far, output
// lines then error lines (or one kind, with type), from a cursor that an earlier answer
// gave in its Sluice-Results-Cursor header: "OUTPUT_OFFSET.ERROR_OFFSET", "0.0" at first.
// A Sluice extension: it works while the batch runs and after it ends in any state.
func (s *Server) handleBatchResults(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var offs [2]int64
	if c := q.Get("cursor"); c != "" {
		a, b, ok := strings.Cut(c, ".")
		var err1, err2 error
		offs[0], err1 = strconv.ParseInt(a, 10, 64)
		offs[1], err2 = strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || offs[0] < 0 || offs[1] < 0 {
			return sluice.Errorf(sluice.KindInvalid, "Invalid value for 'cursor': %q. Pass the %s header of the previous answer, or nothing to start.", c, cursorHeader).WithParam("cursor")
		}
	}
	kinds := []bool{true, false}
	switch t := q.Get("type"); t {
	case "", "all":
	case "output":
		kinds = kinds[:1]
	case "error":
		kinds = kinds[1:]
	default:
		return sluice.Errorf(sluice.KindInvalid, "Invalid value for 'type': %q. Use output, error or all.", t).WithParam("type")
	}
	id := r.PathValue("batch_id")
	if _, err := s.visibleBatch(r); err != nil {
		return err
	}
	var readers []io.ReadCloser
	defer func() {
		for _, rc := range readers {
			rc.Close()
		}
	}()
	next := offs
	for _, succeeded := range kinds {
		i := 1
		if succeeded {
			i = 0
		}
		rc, end, err := s.service.BatchResults(r.Context(), id, succeeded, offs[i])
		if err != nil {
			return withParam(err, "batch_id")
		}
		readers = append(readers, rc)
		next[i] = end
	}
	w.Header().Set("Content-Type", "application/jsonl")
	w.Header().Set(cursorHeader, fmt.Sprintf("%d.%d", next[0], next[1]))
	w.WriteHeader(http.StatusOK)
	for _, rc := range readers {
		if _, err := io.Copy(w, rc); err != nil {
			s.log.WarnContext(r.Context(), "results stream cut off", "batch_id", id, "err", err)
			return nil // the status is sent; the client sees a short body
		}
	}
	return nil
}

type retryJSON struct {
	Lines string `json:"lines"`
}

// handleBatchRetry creates a batch of the lines of an ended batch that did not
// succeed. A Sluice extension; the new batch's metadata has retry_of.
func (s *Server) handleBatchRetry(w http.ResponseWriter, r *http.Request) error {
	var in retryJSON
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
	}
	if _, err := s.visibleBatch(r); err != nil {
		return err
	}
	b, a, err := s.service.RetryBatch(r.Context(), r.PathValue("batch_id"), sluice.RetryLines(in.Lines))
	if a != nil {
		setQuotaHeaders(w.Header(), a)
	}
	if err != nil {
		return withParam(err, "batch_id")
	}
	writeJSON(w, createdStatus(r), s.encodeBatch(b))
	return nil
}
