package httpapi

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice"
)

// decodeJSON accepts exactly the bodies encoding/json decodes as one object into the
// create's fields, with nothing after them, and answers the rest in the API's terms.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}`,
		`{"metadata":{"a":"b"},"output_expires_after":{"seconds":3600,"anchor":"created_at"}}`,
		`{} {}`, `[]`, `"x"`, `{"metadata":{"k":1}}`, `{"dry_run":"yes"}`, ``, `{`, `{"a":1}garbage`, " {}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/v1/batches", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var got batchCreateJSON
		err := decodeJSON(httptest.NewRecorder(), r, &got)

		var want batchCreateJSON
		dec := json.NewDecoder(strings.NewReader(body))
		werr := dec.Decode(&want)
		if werr == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				werr = errTrailing
			}
		}
		isObject := strings.HasPrefix(strings.TrimLeft(body, " \t\r\n"), "{")
		switch {
		case err == nil && (werr != nil || !isObject):
			t.Fatalf("%q: accepted, but encoding/json says %v (object %t)", body, werr, isObject)
		case err != nil && werr == nil && isObject:
			t.Fatalf("%q: refused (%v), but encoding/json decodes it", body, err)
		case err != nil && sluice.ErrorKind(err) != sluice.KindInvalid && sluice.ErrorKind(err) != sluice.KindTooLarge:
			t.Fatalf("%q: error of kind %s", body, sluice.ErrorKind(err))
		}
		for _, leak := range []string{"httpapi.", "map[", "int64", "struct {"} {
			if err != nil && strings.Contains(sluice.ErrorMessage(err), leak) {
				t.Fatalf("%q: message %q names a Go type", body, sluice.ErrorMessage(err))
			}
		}
	})
}

type trailingError struct{}

func (trailingError) Error() string { return "data after the object" }

var errTrailing error = trailingError{}
