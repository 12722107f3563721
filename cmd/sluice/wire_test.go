package main

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

// The wire tests drive a real server through the Files, Uploads and Batches APIs on every
// route family and check each answer against a schema written from the public specs:
// testdata/wire/openai.json from openai/openai-openapi, and
// testdata/wire/azure-*.json from Azure/azure-rest-api-specs. Each file's comments name
// the spec file, revision and schema it came from.

// wireFamilies are the route families and the schema each answers by.
var wireFamilies = []wireFamily{
	{name: "openai", prefix: "/v1", schema: "openai", endpoint: "/v1/chat/completions", bearer: true},
	{name: "azure-ga", prefix: "/openai", query: "api-version=2024-10-21", schema: "azure-2024-10-21", endpoint: "/chat/completions"},
	{name: "azure-preview", prefix: "/openai", query: "api-version=2025-04-01-preview", schema: "azure-2025-04-01-preview", endpoint: "/chat/completions"},
	{name: "azure-v1", prefix: "/openai/v1", schema: "openai", endpoint: "/chat/completions"},
}

// knownDifferences are where Sluice's answers differ from the specs on purpose or for
// now. A difference listed here is logged instead of failing the test; one that no
// longer happens fails it, so that the list stays true. Keys are Object.field:rule for
// bodies (Object.field:enum:value for a value outside an enum) and route:rule for
// statuses and headers.
var knownDifferences = []struct {
	families []string
	key      string
	reason   string
}{
	// OpenAI's spec, on /v1 and /openai/v1.
	{openaiFamilies, "ListFilesResponse.first_id:null", "an empty list has no first ID: Sluice sends null where the spec requires a string"},
	{openaiFamilies, "ListFilesResponse.last_id:null", "an empty list has no last ID: Sluice sends null where the spec requires a string"},
	{openaiFamilies, "ListBatchesResponse.first_id:null", "an empty list has no first ID: Sluice sends null, which the spec's string does not allow"},
	{openaiFamilies, "ListBatchesResponse.last_id:null", "an empty list has no last ID: Sluice sends null, which the spec's string does not allow"},
	{openaiFamilies, "OpenAIFile.status_details:null", "Sluice sends the deprecated status_details as null; the spec's string does not allow null"},
	{openaiFamilies, "OpenAIFile.expires_at:null", "a file that never expires (result files; uploads on /openai/v1) has expires_at null; the spec's integer does not allow null"},
	{openaiFamilies, "GET /files/{id}/content:content-type", "Sluice sends a file's bytes as application/octet-stream; the spec says application/json with schema type string"},

	// Azure's swagger, on /openai.
	{azureFamilies, "FileList.first_id:unknown", "Sluice pages files as OpenAI does; Azure's FileList has only object and data"},
	{azureFamilies, "FileList.last_id:unknown", "Sluice pages files as OpenAI does; Azure's FileList has only object and data"},
	{azureFamilies, "FileList.has_more:unknown", "Sluice pages files as OpenAI does; Azure's FileList has only object and data"},
	{azureFamilies, "BatchesList.first_id:null", "an empty list has no first ID: Sluice sends null; Azure's examples send a string"},
	{azureFamilies, "BatchesList.last_id:null", "an empty list has no last ID: Sluice sends null; Azure's examples send a string"},
	{azureFamilies, "File.status_details:null", "Sluice sends status_details as null; Azure's examples leave it out"},
	{[]string{"azure-ga"}, "File.expires_at:unknown", "Sluice sends expires_at, which File gained after 2024-10-21, on every api-version"},
	{[]string{"azure-preview"}, "File.expires_at:null", "a file uploaded without expires_after has expires_at null; Azure's examples leave it out"},
	{azureFamilies, "Batch.metadata:null", "a batch created without metadata has metadata null; Azure's examples always send an object"},
	{azureFamilies, "BatchErrors.data:type", "Sluice sends errors.data as a list, as OpenAI does; Azure's swagger makes it one BatchErrorData object"},
	{azureFamilies, "BatchErrorData.line:type", "Sluice sends line numbers as integers, as OpenAI does; Azure's swagger types line as a string"},
	{azureFamilies, "Error.type:unknown", "Sluice sends OpenAI's error shape on every family; Azure's Error has code, message, target, details, innererror"},
	{azureFamilies, "Error.param:unknown", "Sluice sends OpenAI's error shape on every family; Azure's Error has code, message, target, details, innererror"},
	{azureFamilies, "UploadResource.file:null", "an upload not completed has no file: Sluice sends null, as OpenAI's Upload does; Azure's examples send a File even for pending and cancelled uploads"},
	{azureFamilies, "POST /uploads:Location:missing", "no route reads an upload back, in Sluice or in either spec (the example's /openai/uploads/runs/{id} is no documented path), so Sluice sends no Location"},
}

var (
	openaiFamilies = []string{"openai", "azure-v1"}
	azureFamilies  = []string{"azure-ga", "azure-preview"}
)

// sluiceExtensions are fields Sluice adds to the specs' objects on purpose. They are not
// reported as unknown; their values are Sluice's own.
var sluiceExtensions = map[string]bool{
	"Batch.usage": true, "Batch.model": true, "Batch.cost": true, "Batch.enqueued_tokens": true,
	"Batch.lines_per_second": true, "Batch.eta": true,
	"BatchUsage.estimated_lines": true,
}

// sluiceEnums are values Sluice adds to the specs' enums on purpose.
var sluiceEnums = map[string][]string{
	"Error.code": {"token_limit_exceeded", "model_mismatch"},
}

type wireFamily struct {
	name     string // also the family of knownDifferences
	prefix   string // of every path
	query    string // added to every path
	schema   string // file under testdata/wire, without .json
	endpoint string // of the batches, and the url of their lines
	bearer   bool   // send the key as Authorization: Bearer, as OpenAI's SDKs do; else api-key
}

// url returns the family's URL path for path, which may have a query of its own.
func (f wireFamily) url(path string) string {
	p := f.prefix + path
	if f.query == "" {
		return p
	}
	if strings.Contains(p, "?") {
		return p + "&" + f.query
	}
	return p + "?" + f.query
}

// wireField is one field of an object as a spec describes it.
type wireField struct {
	Type      string     `json:"type"` // string, integer, boolean, object, array or map
	Required  bool       `json:"required"`
	Nullable  bool       `json:"nullable"`
	Enum      []string   `json:"enum"`
	Prefix    string     `json:"prefix"`
	MinLength int        `json:"min_length"`
	Timestamp bool       `json:"timestamp"` // an integer of Unix seconds
	Ref       string     `json:"ref"`       // object: the object it is; "" for any object
	Items     *wireField `json:"items"`     // array: each element
	Values    string     `json:"values"`    // map: the JSON type of each value
}

// wireRoute is what a spec says a route answers.
type wireRoute struct {
	Status       int               `json:"status"`
	Object       string            `json:"object"`
	ContentType  string            `json:"content_type"`
	ContentTypes []string          `json:"content_types"`
	Headers      map[string]string `json:"headers"` // name: "url" or "integer"
}

// wireSchema is one testdata/wire file.
type wireSchema struct {
	name    string
	Routes  map[string]wireRoute `json:"routes"`
	Objects map[string]struct {
		Fields map[string]*wireField `json:"fields"`
	} `json:"objects"`
}

// MustLoadWireSchema reads testdata/wire/name.json and checks that it is whole.
func MustLoadWireSchema(tb testing.TB, name string) *wireSchema {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "wire", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	s := &wireSchema{name: name}
	if err := json.Unmarshal(b, s); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	var check func(where string, f *wireField)
	check = func(where string, f *wireField) {
		switch f.Type {
		case "string", "integer", "boolean":
		case "object":
			if _, ok := s.Objects[f.Ref]; f.Ref != "" && !ok {
				tb.Fatalf("%s: %s refers to %q, which the file has not", name, where, f.Ref)
			}
		case "array":
			if f.Items == nil {
				tb.Fatalf("%s: %s is an array without items", name, where)
			}
			check(where+"[]", f.Items)
		case "map":
			if f.Values != "string" {
				tb.Fatalf("%s: %s: a map's values must be strings", name, where)
			}
		default:
			tb.Fatalf("%s: %s has type %q", name, where, f.Type)
		}
	}
	for o, obj := range s.Objects {
		for k, f := range obj.Fields {
			check(o+"."+k, f)
		}
	}
	for r, route := range s.Routes {
		if _, ok := s.Objects[route.Object]; route.Object != "" && !ok {
			tb.Fatalf("%s: route %q answers %q, which the file has not", name, r, route.Object)
		}
	}
	return s
}

// wireViolation is one way an answer differs from its spec.
type wireViolation struct {
	key    string // Object.field:rule or route:rule, as knownDifferences name it
	detail string
}

// wireCheck checks JSON values against a schema's objects.
type wireCheck struct {
	s   *wireSchema
	out []wireViolation
}

func (c *wireCheck) add(key, format string, args ...any) {
	c.out = append(c.out, wireViolation{key: key, detail: fmt.Sprintf(format, args...)})
}

// object checks v, at path, against the object name: required fields present, each
// field as the spec has it, and no field the spec does not list.
func (c *wireCheck) object(path, name string, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(name+":type", "%s: got %s, want a %s object", path, jsonKind(v), name)
		return
	}
	fields := c.s.Objects[name].Fields
	for _, k := range sortedKeys(fields) {
		f := fields[k]
		fv, ok := m[k]
		if !ok {
			if f.Required {
				c.add(name+"."+k+":missing", "%s.%s: missing, and the spec requires it", path, k)
			}
			continue
		}
		c.value(path+"."+k, name+"."+k, f, fv)
	}
	for _, k := range sortedKeys(m) {
		if fields[k] == nil && !sluiceExtensions[name+"."+k] {
			c.add(name+"."+k+":unknown", "%s.%s: got %s, a field the spec's %s does not have", path, k, compact(m[k]), name)
		}
	}
}

func (c *wireCheck) value(path, key string, f *wireField, v any) {
	if v == nil {
		if !f.Nullable {
			c.add(key+":null", "%s: got null, which the spec does not allow", path)
		}
		return
	}
	switch f.Type {
	case "string":
		s, ok := v.(string)
		if !ok {
			c.add(key+":type", "%s: got %s %s, want a string", path, jsonKind(v), compact(v))
			return
		}
		if len(f.Enum) > 0 && !slices.Contains(f.Enum, s) && !slices.Contains(sluiceEnums[key], s) {
			c.add(key+":enum:"+s, "%s: got %q, want one of %q", path, s, f.Enum)
		}
		if !strings.HasPrefix(s, f.Prefix) {
			c.add(key+":prefix", "%s: got %q, want an ID starting %q", path, s, f.Prefix)
		}
		if len(s) < f.MinLength {
			c.add(key+":min_length", "%s: got %q, want at least %d characters", path, s, f.MinLength)
		}
	case "integer":
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil {
			c.add(key+":type", "%s: got %s %s, want an integer", path, jsonKind(v), compact(v))
			return
		}
		if f.Timestamp && (i < 1e9 || i >= 1e10) {
			c.add(key+":timestamp", "%s: got %d, want Unix seconds", path, i)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			c.add(key+":type", "%s: got %s %s, want a boolean", path, jsonKind(v), compact(v))
		}
	case "object":
		if a, ok := v.([]any); ok && f.Ref != "" {
			// Check the elements too: a spec that says object where arrays are sent
			// still says what each element is.
			c.add(key+":type", "%s: got an array, want a %s object", path, f.Ref)
			for i, e := range a {
				c.object(fmt.Sprintf("%s[%d]", path, i), f.Ref, e)
			}
			return
		}
		if f.Ref != "" {
			c.object(path, f.Ref, v)
		} else if _, ok := v.(map[string]any); !ok {
			c.add(key+":type", "%s: got %s %s, want an object", path, jsonKind(v), compact(v))
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			c.add(key+":type", "%s: got %s %s, want an array", path, jsonKind(v), compact(v))
			return
		}
		for i, e := range a {
			c.value(fmt.Sprintf("%s[%d]", path, i), key, f.Items, e)
		}
	case "map":
		m, ok := v.(map[string]any)
		if !ok {
			c.add(key+":type", "%s: got %s %s, want an object of strings", path, jsonKind(v), compact(v))
			return
		}
		for _, k := range sortedKeys(m) {
			if _, ok := m[k].(string); !ok {
				c.add(key+":type", "%s.%s: got %s %s, want a string", path, k, jsonKind(m[k]), compact(m[k]))
			}
		}
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// decodeJSON decodes one JSON value with its numbers as written.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more after the JSON value")
	}
	return v, nil
}

// wireRecorder reports violations: known differences are logged and remembered, the
// others fail the test. Each key is reported once per family.
type wireRecorder struct {
	mu       sync.Mutex
	reported map[string]bool // family + " " + key
}

func (r *wireRecorder) report(t *testing.T, family string, v wireViolation) {
	t.Helper()
	r.mu.Lock()
	seen := r.reported[family+" "+v.key]
	r.reported[family+" "+v.key] = true
	r.mu.Unlock()
	if seen {
		return
	}
	for _, d := range knownDifferences {
		if d.key == v.key && slices.Contains(d.families, family) {
			t.Logf("known difference %s: %s (%s)", v.key, v.detail, d.reason)
			return
		}
	}
	t.Errorf("%s: %s", v.key, v.detail)
}

// wireSession is one family's flow against one server.
type wireSession struct {
	fam   wireFamily
	s     *wireSchema
	lines *wireSchema // openai: BatchRequestOutput is the only per-line schema of the sources
	base  string
	key   string
	rec   *wireRecorder
}

// wireAnswer is an answer and its body decoded, when it is JSON.
type wireAnswer struct {
	status int
	header http.Header
	body   []byte
	doc    any
}

// call sends method path and checks the answer against route of the family's schema:
// status (want, when not 0, for the error route), content type, headers and body.
func (w *wireSession) call(t *testing.T, route, method, path string, body io.Reader, contentType string, want int) wireAnswer {
	t.Helper()
	r, ok := w.s.Routes[route]
	if !ok {
		t.Fatalf("%s has no route %q", w.s.name, route)
	}
	if want == 0 {
		want = r.Status
	}
	a := w.send(t, method, w.fam.url(path), body, contentType)
	what := method + " " + w.fam.url(path)
	if a.status != want {
		w.report(t, route+":status", "%s: got status %d, want %d: %s", what, a.status, want, a.body)
	}
	wantCT := r.ContentTypes
	if r.ContentType != "" {
		wantCT = append([]string{r.ContentType}, wantCT...)
	}
	if ct, _, _ := mime.ParseMediaType(a.header.Get("Content-Type")); len(wantCT) > 0 && !slices.Contains(wantCT, ct) {
		w.report(t, route+":content-type", "%s: got Content-Type %q, want %s", what, a.header.Get("Content-Type"), strings.Join(wantCT, " or "))
	}
	for _, name := range sortedKeys(r.Headers) {
		v := a.header.Get(name)
		switch {
		case v == "":
			w.report(t, route+":"+name+":missing", "%s: no %s header", what, name)
		case r.Headers[name] == "url":
			if u, err := url.Parse(v); err != nil || !u.IsAbs() || u.Host == "" {
				w.report(t, route+":"+name+":url", "%s: %s is %q, want an absolute URL", what, name, v)
			}
		case r.Headers[name] == "integer":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				w.report(t, route+":"+name+":integer", "%s: %s is %q, want an integer", what, name, v)
			}
		}
	}
	if r.Object == "" {
		return a
	}
	doc, err := decodeJSON(a.body)
	if err != nil {
		w.report(t, route+":json", "%s: the body is not JSON (%v): %q", what, err, a.body)
		return a
	}
	a.doc = doc
	c := &wireCheck{s: w.s}
	c.object(what+" $", r.Object, doc)
	for _, v := range c.out {
		w.rec.report(t, w.fam.name, v)
	}
	return a
}

func (w *wireSession) report(t *testing.T, key, format string, args ...any) {
	t.Helper()
	w.rec.report(t, w.fam.name, wireViolation{key: key, detail: fmt.Sprintf(format, args...)})
}

// send sends a request with the session's key and returns the answer.
func (w *wireSession) send(t *testing.T, method, target string, body io.Reader, contentType string) wireAnswer {
	t.Helper()
	u, err := url.Parse(w.base)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, u.ResolveReference(ref).String(), body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if w.fam.bearer {
		req.Header.Set("Authorization", "Bearer "+w.key)
	} else {
		req.Header.Set("api-key", w.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return wireAnswer{status: resp.StatusCode, header: resp.Header, body: b}
}

// upload sends a multipart upload of content with fields.
func (w *wireSession) upload(t *testing.T, name, content string, fields map[string]string, want int) wireAnswer {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, k := range sortedKeys(fields) {
		if err := mw.WriteField(k, fields[k]); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(fw, content); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	route := "POST /files"
	if want != 0 {
		route = "error"
	}
	return w.call(t, route, "POST", "/files", &buf, mw.FormDataContentType(), want)
}

// postJSON sends in as a JSON body.
func (w *wireSession) postJSON(t *testing.T, route, path string, in any, want int) wireAnswer {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	return w.call(t, route, "POST", path, body, "application/json", want)
}

// mustStr returns the string member k of an answer's object, failing the test when it
// has none: the flow cannot go on without it.
func mustStr(t *testing.T, a wireAnswer, k string) string {
	t.Helper()
	m, _ := a.doc.(map[string]any)
	s, ok := m[k].(string)
	if !ok {
		t.Fatalf("got %d %s, want a string %q", a.status, a.body, k)
	}
	return s
}

func member(a wireAnswer, k string) any {
	m, _ := a.doc.(map[string]any)
	return m[k]
}

// dataIDs returns the IDs of a list answer's data.
func dataIDs(a wireAnswer) []string {
	ids := []string{}
	data, _ := member(a, "data").([]any)
	for _, d := range data {
		m, _ := d.(map[string]any)
		ids = append(ids, fmt.Sprint(m["id"]))
	}
	return ids
}

// waitBatch polls the batch, checking every answer, until done says so.
func (w *wireSession) waitBatch(t *testing.T, id string, done func(status string) bool) wireAnswer {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		a := w.call(t, "GET /batches/{id}", "GET", "/batches/"+id, nil, "", 0)
		if st := mustStr(t, a, "status"); done(st) {
			return a
		} else if time.Now().After(deadline) {
			t.Fatalf("batch %s: still %s", id, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runBatch uploads content, creates a batch of it without metadata, and polls it to
// its end.
func (w *wireSession) runBatch(t *testing.T, name, content string) wireAnswer {
	t.Helper()
	return w.runBatchOf(t, mustStr(t, w.upload(t, name, content, map[string]string{"purpose": "batch"}, 0), "id"))
}

// runBatchOf creates a batch of the file id without metadata, and polls it to its end.
func (w *wireSession) runBatchOf(t *testing.T, id string) wireAnswer {
	t.Helper()
	b := w.postJSON(t, "POST /batches", "/batches", map[string]any{"input_file_id": id, "endpoint": w.fam.endpoint, "completion_window": "24h"}, 0)
	return w.waitBatch(t, mustStr(t, b, "id"), func(s string) bool { return terminal(batchObj{Status: s}) })
}

// createUpload starts an upload of size bytes for a batch input.
func (w *wireSession) createUpload(t *testing.T, filename string, size int) wireAnswer {
	t.Helper()
	return w.postJSON(t, "POST /uploads", "/uploads", map[string]any{"filename": filename, "purpose": "batch", "bytes": size, "mime_type": "text/jsonl"}, 0)
}

// addPart sends data as a part of the upload id, in the multipart field data.
func (w *wireSession) addPart(t *testing.T, id, data string, want int) wireAnswer {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("data", "blob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(fw, data); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	route := "POST /uploads/{id}/parts"
	if want != 0 {
		route = "error"
	}
	return w.call(t, route, "POST", "/uploads/"+id+"/parts", &buf, mw.FormDataContentType(), want)
}

// checkResultFile checks a batch's result file: its object, and each line of its
// content against BatchRequestOutput. It returns the lines.
func (w *wireSession) checkResultFile(t *testing.T, id string) []map[string]any {
	t.Helper()
	f := w.call(t, "GET /files/{id}", "GET", "/files/"+id, nil, "", 0)
	if got := member(f, "purpose"); got != "batch_output" {
		t.Errorf("result file %s: purpose %v, want batch_output", id, got)
	}
	content := w.call(t, "GET /files/{id}/content", "GET", "/files/"+id+"/content", nil, "", 0)
	if n, _ := member(f, "bytes").(json.Number).Int64(); n != int64(len(content.body)) {
		t.Errorf("result file %s: bytes %d, but its content has %d", id, n, len(content.body))
	}
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(content.body))
	sc.Buffer(nil, 1<<20)
	for i := 1; sc.Scan(); i++ {
		doc, err := decodeJSON(sc.Bytes())
		if err != nil {
			w.report(t, "output line:json", "file %s line %d: %v: %q", id, i, err, sc.Text())
			continue
		}
		c := &wireCheck{s: w.lines}
		c.object(fmt.Sprintf("file %s line %d", id, i), "BatchRequestOutput", doc)
		for _, v := range c.out {
			w.rec.report(t, w.fam.name, v)
		}
		m, _ := doc.(map[string]any)
		lines = append(lines, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// wireServer runs sluice, with key k, over four deployments, each on a simulator of
// its own: gpt-4o-mini answers at once; held never answers, so that its batches stay in
// progress until cancelled; failing answers 500; reset closes the connection. Lines are
// tried once, so that the last two fill error files at once.
func wireServer(t *testing.T) *apiClient {
	t.Helper()
	urls := map[string]string{}
	for name, opts := range map[string]sim.Options{
		"gpt-4o-mini": {}, "held": {HangRate: 1}, "failing": {FailRate: 1}, "reset": {ResetRate: 1},
	} {
		ts := httptest.NewServer(sim.New(opts))
		t.Cleanup(ts.Close)
		urls[name] = ts.URL + "/v1"
	}
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	writeFile(t, path, fmt.Sprintf(`
engine:
  max_attempts: 1
  outage_budget: 1ns
deployments:
  - name: gpt-4o-mini
    enqueued_token_limit: default
    upstreams: [{base_url: %s}]
  - name: held
    enqueued_token_limit: 1000000
    upstreams: [{base_url: %s}]
  - name: failing
    enqueued_token_limit: 1000000
    upstreams: [{base_url: %s}]
  - name: reset
    enqueued_token_limit: 1000000
    upstreams: [{base_url: %s}]
`, urls["gpt-4o-mini"], urls["held"], urls["failing"], urls["reset"]))
	return MustRunMain(t, map[string]string{"SLUICE_API_KEYS": "k"}, "--config", path, "--cancel-grace", "10ms")
}

func TestWire(t *testing.T) {
	t.Parallel()
	rec := &wireRecorder{reported: map[string]bool{}}
	lines := MustLoadWireSchema(t, "openai")
	t.Cleanup(func() {
		if t.Failed() {
			return // a flow cut short leaves differences unseen
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, d := range knownDifferences {
			for _, fam := range d.families {
				if !rec.reported[fam+" "+d.key] {
					t.Errorf("known difference %s on %s no longer happens: remove it from knownDifferences", d.key, fam)
				}
			}
		}
	})
	for _, fam := range wireFamilies {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			c := wireServer(t)
			w := &wireSession{fam: fam, s: MustLoadWireSchema(t, fam.schema), lines: lines, base: c.base, key: c.key, rec: rec}
			runWireFlow(t, w)
		})
	}
}

// runWireFlow takes a fresh server through the whole API: empty lists, an upload read
// back every way, a batch polled to completion and its result files, a batch cancelled
// while in progress, batches whose lines fail, a batch that fails validation, a file
// sent in parts and run as a batch, an upload cancelled, the error answers, and a
// delete. Every answer is checked against the family's schema.
func runWireFlow(t *testing.T, w *wireSession) {
	if a := w.call(t, "GET /files", "GET", "/files", nil, "", 0); len(dataIDs(a)) != 0 {
		t.Errorf("files of a new server: got %s, want none", a.body)
	}
	if a := w.call(t, "GET /batches", "GET", "/batches", nil, "", 0); len(dataIDs(a)) != 0 {
		t.Errorf("batches of a new server: got %s, want none", a.body)
	}

	// Upload, and read the file back every way.
	content := seedFile("gpt-4o-mini", w.fam.endpoint)
	up := w.upload(t, "input.jsonl", content, map[string]string{"purpose": "batch"}, 0)
	fileID := mustStr(t, up, "id")
	if got, _ := member(up, "bytes").(json.Number).Int64(); got != int64(len(content)) || member(up, "filename") != "input.jsonl" || member(up, "purpose") != "batch" {
		t.Errorf("upload: got %s, want input.jsonl of %d bytes for batch", up.body, len(content))
	}
	if loc := up.header.Get("Location"); loc != "" {
		if a := w.send(t, "GET", loc, nil, ""); a.status != 200 || !bytes.Contains(a.body, []byte(fileID)) {
			t.Errorf("GET Location %s: got %d %s, want the file", loc, a.status, a.body)
		}
	}
	if got := mustStr(t, w.call(t, "GET /files/{id}", "GET", "/files/"+fileID, nil, "", 0), "id"); got != fileID {
		t.Errorf("GET file: got id %s, want %s", got, fileID)
	}
	if list := w.call(t, "GET /files", "GET", "/files", nil, "", 0); !slices.Equal(dataIDs(list), []string{fileID}) {
		t.Errorf("files: got %s, want %s alone", list.body, fileID)
	}
	if got := w.call(t, "GET /files/{id}/content", "GET", "/files/"+fileID+"/content", nil, "", 0).body; string(got) != content {
		t.Errorf("content: got %q, want what was uploaded", got)
	}

	// A batch run to completion, polled all the way.
	create := map[string]any{"input_file_id": fileID, "endpoint": w.fam.endpoint, "completion_window": "24h", "metadata": map[string]string{"job": "wire"}}
	b := w.postJSON(t, "POST /batches", "/batches", create, 0)
	batchID := mustStr(t, b, "id")
	if meta, _ := member(b, "metadata").(map[string]any); member(b, "input_file_id") != fileID || meta["job"] != "wire" {
		t.Errorf("create: got %s, want the file and metadata sent", b.body)
	}
	done := w.waitBatch(t, batchID, func(s string) bool { return terminal(batchObj{Status: s}) })
	if st := member(done, "status"); st != "completed" {
		t.Fatalf("batch: got %s, want completed", done.body)
	}
	if list := w.call(t, "GET /batches", "GET", "/batches", nil, "", 0); !slices.Equal(dataIDs(list), []string{batchID}) {
		t.Errorf("batches: got %s, want %s alone", list.body, batchID)
	}
	out := w.checkResultFile(t, mustStr(t, done, "output_file_id"))
	var ids []string
	for _, l := range out {
		ids = append(ids, fmt.Sprint(l["custom_id"]))
		resp, _ := l["response"].(map[string]any)
		if resp == nil || resp["status_code"] != json.Number("200") || l["error"] != nil {
			t.Errorf("output line %v: want a 200 response and a null error", l)
		}
	}
	if sort.Strings(ids); !slices.Equal(ids, []string{"task-0", "task-1", "task-2"}) {
		t.Errorf("output custom_ids: got %v, want task-0..2", ids)
	}
	if errs := w.checkResultFile(t, mustStr(t, done, "error_file_id")); len(errs) != 0 {
		t.Errorf("error file of a batch with no failures: got %d lines", len(errs))
	}

	// A batch cancelled while its requests are in flight. No metadata this time.
	held := mustStr(t, w.upload(t, "held.jsonl", seedFile("held", w.fam.endpoint), map[string]string{"purpose": "batch"}, 0), "id")
	hb := w.postJSON(t, "POST /batches", "/batches", map[string]any{"input_file_id": held, "endpoint": w.fam.endpoint, "completion_window": "24h"}, 0)
	heldID := mustStr(t, hb, "id")
	w.waitBatch(t, heldID, func(s string) bool { return s == "in_progress" || terminal(batchObj{Status: s}) })
	cancel := w.postJSON(t, "POST /batches/{id}/cancel", "/batches/"+heldID+"/cancel", nil, 0)
	if member(cancel, "status") != "cancelling" || member(cancel, "cancelling_at") == nil {
		t.Errorf("cancel: got %s, want cancelling with cancelling_at", cancel.body)
	}
	cancelled := w.waitBatch(t, heldID, func(s string) bool { return terminal(batchObj{Status: s}) })
	if member(cancelled, "status") != "cancelled" || member(cancelled, "cancelled_at") == nil {
		t.Fatalf("cancelled batch: got %s", cancelled.body)
	}
	for _, k := range []string{"output_file_id", "error_file_id"} {
		if id, ok := member(cancelled, k).(string); ok {
			w.checkResultFile(t, id)
		}
	}

	// Batches whose lines fail: the error file holds the upstream's answers, or an
	// error where there was none.
	for _, tc := range []struct {
		model    string
		response bool // each line has the upstream's answer, else an error
	}{
		{model: "failing", response: true},
		{model: "reset", response: false},
	} {
		b := w.runBatch(t, tc.model+".jsonl", seedFile(tc.model, w.fam.endpoint))
		if counts, _ := member(b, "request_counts").(map[string]any); member(b, "status") != "completed" || counts["failed"] != json.Number("3") {
			t.Fatalf("batch of %s: got %s, want completed with 3 failed", tc.model, b.body)
		}
		errs := w.checkResultFile(t, mustStr(t, b, "error_file_id"))
		for _, l := range errs {
			resp, _ := l["response"].(map[string]any)
			if tc.response && (resp == nil || resp["status_code"] != json.Number("500") || l["error"] != nil) {
				t.Errorf("error line of %s: got %v, want the upstream's 500 and a null error", tc.model, l)
			}
			if !tc.response && (resp != nil || l["error"] == nil) {
				t.Errorf("error line of %s: got %v, want a null response and an error", tc.model, l)
			}
		}
		if len(errs) != 3 {
			t.Errorf("error file of %s: got %d lines, want 3", tc.model, len(errs))
		}
		if out := w.checkResultFile(t, mustStr(t, b, "output_file_id")); len(out) != 0 {
			t.Errorf("output file of %s: got %d lines, want none", tc.model, len(out))
		}
	}

	// A batch that fails validation: a custom_id repeats on line 4.
	dup := seedFile("gpt-4o-mini", w.fam.endpoint)
	dup += strings.SplitAfter(dup, "\n")[0]
	if failed := w.runBatch(t, "dup.jsonl", dup); member(failed, "status") != "failed" || member(failed, "errors") == nil {
		t.Errorf("batch of a repeated custom_id: got %s, want failed with errors", failed.body)
	}

	// A file sent in parts: the second half first, then the first, completed in order
	// with the whole's md5. Its file is the parts in order, and runs as a batch.
	whole := seedFile("gpt-4o-mini", w.fam.endpoint)
	half := len(whole) / 2
	u := w.createUpload(t, "parts.jsonl", len(whole))
	uploadID := mustStr(t, u, "id")
	if n, _ := member(u, "bytes").(json.Number).Int64(); member(u, "status") != "pending" || member(u, "file") != nil || n != int64(len(whole)) ||
		member(u, "filename") != "parts.jsonl" || member(u, "purpose") != "batch" {
		t.Errorf("create upload: got %s, want parts.jsonl of %d bytes for batch, pending, without a file", u.body, len(whole))
	}
	second := w.addPart(t, uploadID, whole[half:], 0)
	first := w.addPart(t, uploadID, whole[:half], 0)
	for _, p := range []wireAnswer{first, second} {
		if member(p, "upload_id") != uploadID {
			t.Errorf("part: got %s, want one of %s", p.body, uploadID)
		}
	}
	firstID := mustStr(t, first, "id")
	sum := md5.Sum([]byte(whole))
	completed := w.postJSON(t, "POST /uploads/{id}/complete", "/uploads/"+uploadID+"/complete",
		map[string]any{"part_ids": []string{firstID, mustStr(t, second, "id")}, "md5": hex.EncodeToString(sum[:])}, 0)
	file, _ := member(completed, "file").(map[string]any)
	partsFileID, _ := file["id"].(string)
	if member(completed, "status") != "completed" || partsFileID == "" || file["filename"] != "parts.jsonl" || file["purpose"] != "batch" ||
		file["bytes"] != json.Number(strconv.Itoa(len(whole))) {
		t.Fatalf("complete: got %s, want completed with a file parts.jsonl of %d bytes for batch", completed.body, len(whole))
	}
	if got := mustStr(t, w.call(t, "GET /files/{id}", "GET", "/files/"+partsFileID, nil, "", 0), "id"); got != partsFileID {
		t.Errorf("GET the upload's file: got id %s, want %s", got, partsFileID)
	}
	if got := w.call(t, "GET /files/{id}/content", "GET", "/files/"+partsFileID+"/content", nil, "", 0).body; string(got) != whole {
		t.Errorf("content of the upload's file: got %q, want the parts in order, %q", got, whole)
	}
	pb := w.runBatchOf(t, partsFileID)
	if counts, _ := member(pb, "request_counts").(map[string]any); member(pb, "status") != "completed" || counts["completed"] != json.Number("3") {
		t.Errorf("batch of the upload's file: got %s, want completed with 3 completed", pb.body)
	}

	// An upload cancelled with a part in it, and one left pending for the error cases.
	cancelledID := mustStr(t, w.createUpload(t, "cancelled.jsonl", 10), "id")
	w.addPart(t, cancelledID, "12345", 0)
	if c := w.postJSON(t, "POST /uploads/{id}/cancel", "/uploads/"+cancelledID+"/cancel", nil, 0); member(c, "status") != "cancelled" || member(c, "file") != nil {
		t.Errorf("cancel upload: got %s, want cancelled without a file", c.body)
	}
	pendingID := mustStr(t, w.createUpload(t, "pending.jsonl", len(whole)), "id")
	pendingPart := mustStr(t, w.addPart(t, pendingID, whole, 0), "id")
	wrongSum := md5.Sum([]byte("not the file"))

	// Error answers.
	for _, tc := range []struct {
		name, method, path string
		body               any
		upload             bool   // a multipart upload without purpose instead of body
		part               string // an upload: send it a part instead of body
		key                string
		status             int
		param              string // the error's param, when it must have one
		azureCode          string // the ErrorCode whose description fits, required on /openai
	}{
		{name: "unknown-batch", method: "GET", path: "/batches/batch_nope", status: 404, azureCode: "notFound"},
		{name: "cancel-unknown-batch", method: "POST", path: "/batches/batch_nope/cancel", status: 404, azureCode: "notFound"},
		{name: "unknown-file", method: "GET", path: "/files/file-nope", status: 404, azureCode: "notFound"},
		{name: "content-of-unknown-file", method: "GET", path: "/files/file-nope/content", status: 404, azureCode: "notFound"},
		{name: "delete-unknown-file", method: "DELETE", path: "/files/file-nope", status: 404, azureCode: "notFound"},
		{name: "bad-limit", method: "GET", path: "/batches?limit=0", status: 400, azureCode: "invalidPayload"},
		{name: "create-without-input-file", method: "POST", path: "/batches", body: map[string]any{"endpoint": w.fam.endpoint, "completion_window": "24h"}, status: 400, azureCode: "invalidPayload"},
		{name: "upload-without-purpose", upload: true, status: 400, azureCode: "invalidPayload"},
		{name: "wrong-key", method: "GET", path: "/batches", key: "wrong", status: 401},
		{name: "wrong-method-on-batch", method: "PUT", path: "/batches/" + batchID, status: 405},
		{name: "wrong-method-on-batches", method: "DELETE", path: "/batches", status: 405},
		{name: "cancel-completed-batch", method: "POST", path: "/batches/" + batchID + "/cancel", status: 409, azureCode: "conflict"},
		{name: "part-to-cancelled-upload", part: cancelledID, status: 409, azureCode: "conflict"},
		{name: "cancel-completed-upload", method: "POST", path: "/uploads/" + uploadID + "/cancel", status: 409, azureCode: "conflict"},
		{name: "complete-with-wrong-md5", method: "POST", path: "/uploads/" + pendingID + "/complete",
			body: map[string]any{"part_ids": []string{pendingPart}, "md5": hex.EncodeToString(wrongSum[:])}, status: 400, param: "md5", azureCode: "invalidPayload"},
		{name: "complete-with-part-of-another-upload", method: "POST", path: "/uploads/" + pendingID + "/complete",
			body: map[string]any{"part_ids": []string{firstID}}, status: 400, param: "part_ids", azureCode: "invalidPayload"},
		{name: "part-to-unknown-upload", part: "upload_nope", status: 404, azureCode: "notFound"},
		{name: "complete-unknown-upload", method: "POST", path: "/uploads/upload_nope/complete", body: map[string]any{"part_ids": []string{"part_nope"}}, status: 404, azureCode: "notFound"},
		{name: "cancel-unknown-upload", method: "POST", path: "/uploads/upload_nope/cancel", status: 404, azureCode: "notFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ww := *w
			if tc.key != "" {
				ww.key = tc.key
			}
			var a wireAnswer
			switch {
			case tc.upload:
				a = ww.upload(t, "x.jsonl", content, nil, tc.status)
			case tc.part != "":
				a = ww.addPart(t, tc.part, "x", tc.status)
			case tc.body != nil:
				a = ww.postJSON(t, "error", tc.path, tc.body, tc.status)
			default:
				a = ww.call(t, "error", tc.method, tc.path, nil, "", tc.status)
			}
			e, _ := member(a, "error").(map[string]any)
			if w.fam.prefix == "/openai" && tc.azureCode != "" && e["code"] != tc.azureCode {
				t.Errorf("code: got %v, want %s", e["code"], tc.azureCode)
			}
			if tc.param != "" && e["param"] != tc.param {
				t.Errorf("param: got %v, want %s: %s", e["param"], tc.param, a.body)
			}
			if tc.status == 405 && a.header.Get("Allow") == "" {
				w.report(t, "error:Allow:missing", "%s %s: a 405 without Allow (RFC 9110 section 15.5.6)", tc.method, tc.path)
			}
		})
	}

	// Delete the cancelled batch's input, which none of the cases above reads.
	t.Run("delete", func(t *testing.T) {
		t.Parallel()
		del := w.call(t, "DELETE /files/{id}", "DELETE", "/files/"+held, nil, "", 0)
		if member(del, "id") != held || member(del, "deleted") != true {
			t.Errorf("delete: got %s, want %s deleted", del.body, held)
		}
		w.call(t, "error", "GET", "/files/"+held, nil, "", 404)
	})
}

// The checker itself: each rule catches what it is for.
func TestWireCheck(t *testing.T) {
	t.Parallel()
	s := &wireSchema{name: "test"}
	if err := json.Unmarshal([]byte(`{"objects": {
		"Batch": {"fields": {
			"id": {"type": "string", "required": true, "prefix": "batch_"},
			"status": {"type": "string", "enum": ["completed"]},
			"created_at": {"type": "integer", "required": true, "timestamp": true},
			"failed_at": {"type": "integer", "timestamp": true, "nullable": true},
			"errors": {"type": "object", "ref": "Errors"},
			"metadata": {"type": "map", "values": "string"}
		}},
		"Errors": {"fields": {"line": {"type": "integer"}, "message": {"type": "string", "min_length": 1}}}
	}}`), s); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{name: "valid", doc: `{"id": "batch_1", "status": "completed", "created_at": 1700000000, "failed_at": null, "errors": {"line": 2, "message": "m"}, "metadata": {"k": "v"}}`},
		{name: "extension", doc: `{"id": "batch_1", "created_at": 1700000000, "usage": {"input_tokens": 1}}`},
		{name: "missing-required", doc: `{"id": "batch_1"}`, want: []string{"Batch.created_at:missing"}},
		{name: "unknown-field", doc: `{"id": "batch_1", "created_at": 1700000000, "extra": 1}`, want: []string{"Batch.extra:unknown"}},
		{name: "float-timestamp", doc: `{"id": "batch_1", "created_at": 1700000000.5}`, want: []string{"Batch.created_at:type"}},
		{name: "string-timestamp", doc: `{"id": "batch_1", "created_at": "1700000000"}`, want: []string{"Batch.created_at:type"}},
		{name: "millisecond-timestamp", doc: `{"id": "batch_1", "created_at": 1700000000000}`, want: []string{"Batch.created_at:timestamp"}},
		{name: "null-not-allowed", doc: `{"id": null, "created_at": 1700000000, "errors": null}`, want: []string{"Batch.errors:null", "Batch.id:null"}},
		{name: "enum", doc: `{"id": "batch_1", "created_at": 1700000000, "status": "Completed"}`, want: []string{"Batch.status:enum:Completed"}},
		{name: "prefix", doc: `{"id": "job_1", "created_at": 1700000000}`, want: []string{"Batch.id:prefix"}},
		{name: "nested", doc: `{"id": "batch_1", "created_at": 1700000000, "errors": {"line": "2", "message": ""}}`, want: []string{"Errors.line:type", "Errors.message:min_length"}},
		{name: "array-for-object", doc: `{"id": "batch_1", "created_at": 1700000000, "errors": [{"line": "2"}]}`, want: []string{"Batch.errors:type", "Errors.line:type"}},
		{name: "map-of-non-strings", doc: `{"id": "batch_1", "created_at": 1700000000, "metadata": {"k": 1}}`, want: []string{"Batch.metadata:type"}},
		{name: "not-an-object", doc: `[]`, want: []string{"Batch:type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc, err := decodeJSON([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			c := &wireCheck{s: s}
			c.object("$", "Batch", doc)
			got := []string{}
			for _, v := range c.out {
				got = append(got, v.key)
			}
			sort.Strings(got)
			if want := append([]string{}, tc.want...); !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}
