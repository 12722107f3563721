package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/httpapi"
)

// fakeService reads uploads whole, as the engine does, with no size limit of its own,
// and hands out file contents; started and release let a test hold uploads running.
type fakeService struct {
	sluice.Service
	started chan string   // gets the file name of each upload as it starts, if set
	release chan struct{} // uploads wait for it to close, if set
	content func() io.ReadCloser

	mu    sync.Mutex
	names []string
}

func (f *fakeService) UploadFile(ctx context.Context, up sluice.FileUpload) (*sluice.File, error) {
	if f.started != nil {
		f.started <- up.Filename
	}
	if f.release != nil {
		<-f.release
	}
	n, err := io.Copy(io.Discard, up.Body)
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err) // an internal error, as the engine's
	}
	f.mu.Lock()
	f.names = append(f.names, up.Filename)
	f.mu.Unlock()
	return &sluice.File{ID: "file-1", Bytes: n, Filename: up.Filename, Purpose: sluice.PurposeBatch, Status: sluice.FileStatusProcessed}, nil
}

func (f *fakeService) FileContent(ctx context.Context, id string) (*sluice.File, io.ReadCloser, error) {
	rc := f.content()
	return &sluice.File{ID: id, Bytes: 1 << 40}, rc, nil
}

func (f *fakeService) CreateBatch(ctx context.Context, c sluice.BatchCreate) (*sluice.Batch, *sluice.Admission, error) {
	return nil, nil, sluice.Errorf(sluice.KindNotFound, "No such File object: %s", c.InputFileID)
}

// fakeStore knows one file, of any ID.
type fakeStore struct{ sluice.Store }

func (fakeStore) FindFileByID(ctx context.Context, id string) (*sluice.File, error) {
	return &sluice.File{ID: id, Purpose: sluice.PurposeBatch, Status: sluice.FileStatusProcessed}, nil
}

func (fakeStore) UpdateFile(ctx context.Context, id string, u sluice.FileUpdate) (*sluice.File, error) {
	return &sluice.File{ID: id, Purpose: sluice.PurposeBatch, Status: sluice.FileStatusProcessed, ExpiresAt: u.ExpiresAt}, nil
}

// logBuffer is a log destination safe to read while the server writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type limitsBundle struct {
	url  string
	svc  *fakeService
	logs *logBuffer
}

// setup serves the API with opts (its Logger and file limits set here) over a real
// HTTP server, as deadlines need a connection.
func setup(t *testing.T, svc *fakeService, opts httpapi.Options) limitsBundle {
	t.Helper()
	if svc == nil {
		svc = &fakeService{}
	}
	logs := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	opts.MaxFiles, opts.MaxExpiringFiles = -1, -1
	// Served as sluice serve serves it: through a LimitListener.
	ts := httptest.NewUnstartedServer(httpapi.NewServer(fakeStore{}, svc, &opts))
	ln := httpapi.LimitListener(ts.Listener, 64)
	ts.Listener, ts.Config.ConnState = ln, ln.ConnState
	ts.Start()
	t.Cleanup(ts.Close)
	return limitsBundle{url: ts.URL, svc: svc, logs: logs}
}

// form returns a multipart body of a purpose field and a file part.
func form(t *testing.T, filename string, size int) (string, []byte) {
	t.Helper()
	return formWith(t, fmt.Sprintf("form-data; name=\"file\"; filename=%q", filename), size)
}

// formWith is form with the file part's Content-Disposition as given.
func formWith(t *testing.T, disposition string, size int) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("purpose", "batch")
	w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Disposition": {disposition}})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("x"), size))
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// send sends a request with key (if any) and returns the status, headers and error.
func send(t *testing.T, method, url, key, contentType string, body io.Reader) (int, http.Header, apiError) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e apiError
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s %s: %d with %q, not the API's error shape", method, url, res.StatusCode, b)
		}
	}
	return res.StatusCode, res.Header, e
}

// rawRequest opens a connection, writes head and body, and then nothing more; it
// returns the answer's status line and body, or fails after 10 seconds.
func rawRequest(t *testing.T, url, head, body string) (string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	return res.Status, string(b)
}

func TestStalledBodyIsCutOff(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, httpapi.Options{Limits: httpapi.Limits{StallTimeout: 100 * time.Millisecond, MinRate: -1}})
	for _, tc := range []struct{ name, head, body string }{
		{"json", "POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n", `{"input_file_id": "fi`},
		{"upload", "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n",
			"--B\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n{\"custom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, body := rawRequest(t, b.url, tc.head, tc.body)
			if !strings.HasPrefix(status, "400") || !strings.Contains(body, `"code":"request_timeout"`) {
				t.Errorf("got %s %s, want 400 request_timeout", status, body)
			}
		})
	}
}

// slowReader gives n bytes, one every pause.
type slowReader struct {
	n     int
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	s.n--
	p[0] = 'x'
	return 1, nil
}

var xs [64 << 10]byte

// chunkReader gives n chunks of size bytes, with a pause before each.
type chunkReader struct {
	n, size int
	pause   time.Duration
	left    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		if c.n == 0 {
			return 0, io.EOF
		}
		time.Sleep(c.pause)
		c.n--
		c.left = c.size
	}
	n := copy(p[:min(len(p), c.left)], xs[:])
	c.left -= n
	return n, nil
}

func TestBodyUnderTheMinimumRateIsCutOff(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, httpapi.Options{Limits: httpapi.Limits{StallTimeout: 100 * time.Millisecond, MinRate: 64 << 10}})
	t.Run("trickle", func(t *testing.T) {
		t.Parallel()
		// 200 bytes a second: under the rate, though it never stops.
		status, _, e := send(t, "POST", b.url+"/v1/batches", "", "application/json", io.MultiReader(strings.NewReader(`{"metadata":{"a":"`), &slowReader{n: 1000, pause: 5 * time.Millisecond}))
		if status != 400 || e.Error.Code == nil || *e.Error.Code != "request_timeout" {
			t.Errorf("got %d %+v, want 400 request_timeout", status, e.Error)
		}
	})
	t.Run("fast-and-long", func(t *testing.T) {
		t.Parallel()
		// 16 MiB in 64 KiB pieces with pauses: it takes four times the stall timeout at
		// least, but comes fast while it comes (200 times the rate), and the server's
		// own pauses are not counted. The window is wider than the trickle's so that a
		// loaded machine's scheduling pauses (under -race, say) do not look like a
		// stalled client.
		long := setup(t, nil, httpapi.Options{Limits: httpapi.Limits{StallTimeout: 300 * time.Millisecond, MinRate: 64 << 10}})
		ct, head := form(t, "in.jsonl", 0)
		head = head[:bytes.LastIndex(head, []byte("\r\n--"))]
		body := io.MultiReader(bytes.NewReader(head), &chunkReader{n: 256, size: 64 << 10, pause: 5 * time.Millisecond}, strings.NewReader("\r\n--"+ct[strings.Index(ct, "=")+1:]+"--\r\n"))
		if status, _, e := send(t, "POST", long.url+"/openai/v1/files", "", ct, body); status != 200 {
			t.Errorf("got %d %+v, want 200", status, e.Error)
		}
	})
}

// closeSignal is a file's content that says when the server closed it.
type closeSignal struct {
	io.Reader
	closed chan struct{}
}

func (c *closeSignal) Close() error { close(c.closed); return nil }

func TestResponseNotTakenIsCutOff(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{})
	svc := &fakeService{content: func() io.ReadCloser {
		return &closeSignal{Reader: io.LimitReader(zeros{}, 1<<40), closed: closed}
	}}
	b := setup(t, svc, httpapi.Options{Limits: httpapi.Limits{StallTimeout: 100 * time.Millisecond, MinRate: 1 << 10}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /v1/files/file-1/content HTTP/1.1\r\nHost: x\r\n\r\n")
	// The client reads nothing: the server's writes fill the socket's buffers and stop.
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server still writes to a client that has not read for 10 seconds")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestBodySizeLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, httpapi.Options{Limits: httpapi.Limits{MaxUploadBytes: 1000}})
	t.Run("upload", func(t *testing.T) {
		t.Parallel()
		// The service takes any size; the route's limit (1000 bytes and 1 MiB for the
		// form) stops the body.
		ct, body := form(t, "in.jsonl", 2<<20)
		req, _ := http.NewRequest("POST", b.url+"/v1/files", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var e apiError
		json.NewDecoder(res.Body).Decode(&e)
		if res.StatusCode != 413 || !strings.Contains(e.Error.Message, fmt.Sprint(1000+1<<20)) {
			t.Errorf("got %d %+v, want 413 naming %d bytes", res.StatusCode, e.Error, 1000+1<<20)
		}
		if !res.Close {
			t.Error("the connection is kept open, though the rest of the body is not read")
		}
		if strings.Contains(b.logs.String(), "level=ERROR") {
			t.Errorf("a body over the limit is logged as a server error:\n%s", b.logs)
		}
	})
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		body := `{"metadata":{"a":"` + strings.Repeat("x", 2<<20) + `"}}`
		if status, _, _ := send(t, "POST", b.url+"/v1/batches", "", "application/json", strings.NewReader(body)); status != 413 {
			t.Errorf("got %d, want 413", status)
		}
	})
	t.Run("upload-within", func(t *testing.T) {
		t.Parallel()
		ct, body := form(t, "in.jsonl", 900)
		if status, _, e := send(t, "POST", b.url+"/openai/v1/files", "", ct, bytes.NewReader(body)); status != 200 {
			t.Errorf("got %d %+v, want 200", status, e.Error)
		}
	})
}

func TestMultipartLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, httpapi.Options{})
	t.Run("too-many-parts", func(t *testing.T) {
		t.Parallel()
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for i := range 40 {
			mw.WriteField(fmt.Sprintf("f%d", i), "v")
		}
		mw.Close()
		status, _, e := send(t, "POST", b.url+"/v1/files", "", mw.FormDataContentType(), &body)
		if status != 400 || !strings.Contains(e.Error.Message, "more than 32 parts") {
			t.Errorf("got %d %+v, want 400 naming the parts", status, e.Error)
		}
	})
	for _, tc := range []struct{ name, disposition, want string }{
		{"too-long", `form-data; name="file"; filename="` + strings.Repeat("a", 256) + `.jsonl"`, "longer than 255 bytes"},
		// Control characters cannot be in a header line, but can be encoded (RFC 2231).
		{"control", `form-data; name="file"; filename*=UTF-8''in%01put.jsonl`, "control character"},
		{"escape", `form-data; name="file"; filename*=UTF-8''in%1B%5B2Jput.jsonl`, "control character"},
		{"newline", `form-data; name="file"; filename*=UTF-8''in%0D%0Aput.jsonl`, "control character"},
		{"c1-control", `form-data; name="file"; filename="in` + "\u0085" + `put.jsonl"`, "control character"},
		{"folder", `form-data; name="file"; filename="data/.."`, "names a folder"},
		{"not-utf8", `form-data; name="file"; filename="in` + "\xff" + `put.jsonl"`, "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct, body := formWith(t, tc.disposition, 10)
			status, _, e := send(t, "POST", b.url+"/openai/v1/files", "", ct, bytes.NewReader(body))
			if status != 400 || !strings.Contains(e.Error.Message, tc.want) || e.Error.Param == nil || *e.Error.Param != "file" {
				t.Errorf("got %d %+v, want 400 on file saying %q", status, e.Error, tc.want)
			}
		})
	}
	t.Run("base-name-only", func(t *testing.T) {
		t.Parallel()
		svc := &fakeService{}
		b := setup(t, svc, httpapi.Options{})
		for _, name := range []string{`C:\Users\me\in.jsonl`, "../../etc/in.jsonl", "/abs/in.jsonl", strings.Repeat("d/", 300) + "in.jsonl"} {
			ct, body := form(t, name, 10)
			if status, _, e := send(t, "POST", b.url+"/openai/v1/files", "", ct, bytes.NewReader(body)); status != 200 {
				t.Errorf("%q: got %d %+v, want 200", name, status, e.Error)
			}
		}
		for _, got := range svc.names {
			if got != "in.jsonl" {
				t.Errorf("stored file name %q, want in.jsonl", got)
			}
		}
	})
}

func TestConcurrentUploadsAreCapped(t *testing.T) {
	t.Parallel()
	t.Run("in-all", func(t *testing.T) {
		t.Parallel()
		svc := &fakeService{started: make(chan string, 4), release: make(chan struct{})}
		b := setup(t, svc, httpapi.Options{Limits: httpapi.Limits{MaxUploads: 1}})
		ct, body := form(t, "first.jsonl", 10)
		done := make(chan int)
		go func() {
			status, _, _ := send(t, "POST", b.url+"/v1/files", "", ct, bytes.NewReader(body))
			done <- status
		}()
		<-svc.started
		status, h, e := send(t, "POST", b.url+"/v1/files", "", ct, bytes.NewReader(body))
		if status != 429 || h.Get("Retry-After") == "" || !strings.Contains(e.Error.Message, "uploads") {
			t.Errorf("second upload: got %d %+v Retry-After %q, want 429 with Retry-After", status, e.Error, h.Get("Retry-After"))
		}
		close(svc.release)
		if status := <-done; status != 200 {
			t.Errorf("first upload: got %d, want 200", status)
		}
		if status, _, e := send(t, "POST", b.url+"/v1/files", "", ct, bytes.NewReader(body)); status != 200 {
			t.Errorf("upload after the first ended: got %d %+v, want 200", status, e.Error)
		}
	})
	t.Run("per-key", func(t *testing.T) {
		t.Parallel()
		svc := &fakeService{started: make(chan string, 4), release: make(chan struct{})}
		b := setup(t, svc, httpapi.Options{APIKeys: []string{"key-a", "key-b"}, Limits: httpapi.Limits{MaxUploads: 10, MaxUploadsPerKey: 1}})
		ct, body := form(t, "in.jsonl", 10)
		done := make(chan int, 2)
		go func() {
			status, _, _ := send(t, "POST", b.url+"/v1/files", "key-a", ct, bytes.NewReader(body))
			done <- status
		}()
		<-svc.started
		status, h, _ := send(t, "POST", b.url+"/v1/files", "key-a", ct, bytes.NewReader(body))
		if status != 429 || h.Get("Retry-After") == "" {
			t.Errorf("key-a's second upload: got %d Retry-After %q, want 429 with Retry-After", status, h.Get("Retry-After"))
		}
		go func() {
			status, _, _ := send(t, "POST", b.url+"/v1/files", "key-b", ct, bytes.NewReader(body))
			done <- status
		}()
		<-svc.started // key-b's upload runs beside key-a's
		close(svc.release)
		for range 2 {
			if status := <-done; status != 200 {
				t.Errorf("got %d, want 200", status)
			}
		}
	})
}

func TestRequestRatePerKey(t *testing.T) {
	t.Parallel()
	// A token a thousand seconds: the third request at once is refused, whatever the
	// clock does meanwhile.
	b := setup(t, nil, httpapi.Options{APIKeys: []string{"key-a", "key-b"}, Limits: httpapi.Limits{Rate: 0.001, Burst: 2}})
	for i := range 2 {
		if status, _, _ := send(t, "GET", b.url+"/v1/nothing-here", "key-a", "", nil); status != 404 {
			t.Errorf("request %d: got %d, want 404", i+1, status)
		}
	}
	status, h, e := send(t, "GET", b.url+"/v1/nothing-here", "key-a", "", nil)
	if status != 429 || h.Get("Retry-After") == "" || e.Error.Type != "invalid_request_error" || e.Error.Message == "" {
		t.Errorf("third request: got %d %+v Retry-After %q, want 429 in the API's shape with Retry-After", status, e.Error, h.Get("Retry-After"))
	}
	if status, _, _ := send(t, "GET", b.url+"/v1/nothing-here", "key-b", "", nil); status != 404 {
		t.Errorf("another key: got %d, want 404: the limit is per key", status)
	}
}

func TestBearerSchemeInAnyCase(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, httpapi.Options{APIKeys: []string{"k-1"}})
	for _, auth := range []string{"Bearer k-1", "bearer k-1", "BEARER  k-1", " Bearer k-1 "} {
		req, _ := http.NewRequest("GET", b.url+"/v1/nothing-here", nil)
		req.Header.Set("Authorization", auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Errorf("Authorization %q: got %d, want 404 (authenticated)", auth, res.StatusCode)
		}
	}
	for _, auth := range []string{"Basic k-1", "Bearerk-1", "Bearer k-2"} {
		req, _ := http.NewRequest("GET", b.url+"/v1/nothing-here", nil)
		req.Header.Set("Authorization", auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Errorf("Authorization %q: got %d, want 401", auth, res.StatusCode)
		}
	}
}

func TestClientGoneMidUploadIsNotAServerError(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, httpapi.Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n"+
		"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n{\"custom_id\":")
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.logs.String(), "client went away") {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the client going away:\n%s", b.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if logs := b.logs.String(); strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "level=WARN") {
		t.Errorf("want the client's going logged at WARN, not ERROR:\n%s", logs)
	}
}

func TestListenerClosesIdleConnectionsAtTheLimit(t *testing.T) {
	t.Parallel()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := httpapi.LimitListener(tcp, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), ConnState: ln.ConnState}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// Two clients that keep their connections open, idle, as the fd-exhaustion attack
	// does.
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		idle = append(idle, c)
	}
	// A third is served: the oldest idle connection makes room.
	c, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatalf("third connection at the limit: %v", err)
	}
	// One of the idle ones was closed (the one idle longest, but which went idle
	// first is up to the scheduler).
	closed := make(chan error, 2)
	for _, c := range idle {
		go func() {
			_, err := c.Read(make([]byte, 1))
			closed <- err
		}()
	}
	if err := <-closed; err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("no idle connection was closed: %v", err)
	}
}

func TestListenerCloseEndsAWaitingAccept(t *testing.T) {
	t.Parallel()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := httpapi.LimitListener(tcp, 1)
	first, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	held, err := ln.Accept() // the one place, held and not idle
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	second, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	ln.Close()
	select {
	case err := <-accepted:
		if err == nil {
			t.Error("Accept at the limit after Close: got a connection, want an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waits after Close")
	}
}

// A request refused before its body is read (here a 401) whose client never sends the
// body it announced is cut off after the stall timeout: it does not hold its
// connection, and the server goes on answering.
func TestRefusedRequestWithoutItsBodyIsCutOff(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, httpapi.Options{APIKeys: []string{"k"}, Limits: httpapi.Limits{StallTimeout: 200 * time.Millisecond, MinRate: -1}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a request whose body never came: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", resp.StatusCode)
	}
}
