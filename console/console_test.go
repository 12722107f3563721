package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice/console"
)

const wantCSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// MustGet serves one request to the console's handler and returns the answer and its body.
func MustGet(tb testing.TB, method, target string, header http.Header) (*http.Response, string) {
	tb.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	console.Handler().ServeHTTP(w, r)
	res := w.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return res, string(body)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, wantType, wantIn string
	}{
		{name: "no-slash", path: "/console", wantType: "text/html; charset=utf-8", wantIn: "<title>Batch jobs"},
		{name: "index-fallback", path: "/console/", wantType: "text/html; charset=utf-8", wantIn: "<title>Batch jobs"},
		{name: "index-by-name", path: "/console/index.html", wantType: "text/html; charset=utf-8", wantIn: "<title>Batch jobs"},
		{name: "module", path: "/console/app.js", wantType: "text/javascript; charset=utf-8", wantIn: "import"},
		{name: "stylesheet", path: "/console/app.css", wantType: "text/css; charset=utf-8", wantIn: "prefers-color-scheme"},
		{name: "icon", path: "/console/favicon.svg", wantType: "image/svg+xml", wantIn: "<svg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, body := MustGet(t, "GET", tt.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: got status %d, want 200", tt.path, res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("GET %s: got Content-Type %q, want %q", tt.path, got, tt.wantType)
			}
			if !strings.Contains(body, tt.wantIn) {
				t.Errorf("GET %s: body does not contain %q", tt.path, tt.wantIn)
			}
			checkHeaders(t, res)
		})
	}
}

// checkHeaders checks what every answer of the console carries, errors included.
func checkHeaders(t *testing.T, res *http.Response) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": wantCSP,
		"Cache-Control":           "no-cache",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("got %s %q, want %q", k, got, want)
		}
	}
}

func TestHandlerNotFound(t *testing.T) {
	t.Parallel()
	for _, path := range []string{
		"/console/nope.js",
		"/console/static/app.js", // the embedded folder's own name is not part of the path
		"/console/../go.mod",
		"/console/../console/console.go",
		"/console/%2e%2e/doc.go",
		"/console/..%2fdoc.go",
		"/console/./app.js",
		"/console//app.js",
		"/console/app.js/",
		"/console/doc.go",
		"/console/console.go",
		"/console/.",
		"/console/..",
		"/consoleapp.js",
		"/app.js",
	} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			res, body := MustGet(t, "GET", path, nil)
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: got status %d, want 404 (body %.60q)", path, res.StatusCode, body)
			}
			checkHeaders(t, res)
		})
	}
}

func TestHandlerMethods(t *testing.T) {
	t.Parallel()
	t.Run("Head", func(t *testing.T) {
		t.Parallel()
		res, body := MustGet(t, "HEAD", "/console/app.css", nil)
		if res.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD: got status %d and %d bytes, want 200 and none", res.StatusCode, len(body))
		}
		if got := res.Header.Get("Content-Type"); got != "text/css; charset=utf-8" {
			t.Errorf("HEAD: got Content-Type %q, want text/css; charset=utf-8", got)
		}
	})
	t.Run("Post", func(t *testing.T) {
		t.Parallel()
		res, _ := MustGet(t, "POST", "/console/", nil)
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST: got status %d, want 405", res.StatusCode)
		}
		if got := res.Header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("POST: got Allow %q, want %q", got, "GET, HEAD")
		}
	})
}

func TestHandlerRevalidates(t *testing.T) {
	t.Parallel()
	res, _ := MustGet(t, "GET", "/console/app.js", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("got no ETag")
	}
	res, body := MustGet(t, "GET", "/console/app.js", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("If-None-Match: got status %d and %d bytes, want 304 and none", res.StatusCode, len(body))
	}
}

// TestNoInlineCode checks that the page works under its own policy: no inline
// scripts, styles or handlers, and nothing loaded from another origin.
func TestNoInlineCode(t *testing.T) {
	t.Parallel()
	_, index := MustGet(t, "GET", "/console/", nil)
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
	} {
		if m := bad.FindString(index); m != "" {
			t.Errorf("index.html has %q, which the policy forbids or the page must not need", m)
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(index, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("index.html has an inline script: %s", tag)
		}
	}
}

// TestReferencesResolve checks that every file index.html names and every module a
// script imports is served.
func TestReferencesResolve(t *testing.T) {
	t.Parallel()
	_, index := MustGet(t, "GET", "/console/", nil)
	refs := regexp.MustCompile(`(?:src|href)="([^"#][^"]*)"`).FindAllStringSubmatch(index, -1)
	if len(refs) == 0 {
		t.Fatal("index.html names no file")
	}
	seen := map[string]bool{}
	queue := []string{}
	for _, m := range refs {
		queue = append(queue, m[1])
	}
	imports := regexp.MustCompile(`(?m)^import[^'"]*['"]\./([^'"]+)['"]`)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		res, body := MustGet(t, "GET", "/console/"+name, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET /console/%s: got status %d, want 200", name, res.StatusCode)
			continue
		}
		if strings.HasSuffix(name, ".js") {
			for _, m := range imports.FindAllStringSubmatch(body, -1) {
				queue = append(queue, m[1])
			}
		}
	}
	for _, want := range []string{"app.js", "api.js", "ui.js", "jobs.js", "job.js", "files.js", "chart.js", "app.css"} {
		if !seen[want] {
			t.Errorf("%s is not reached from index.html", want)
		}
	}
}
