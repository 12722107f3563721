package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// contentSecurityPolicy allows only this origin's scripts, styles and connections, and
// no inline script or style: the page needs nothing else. Images may be data: URLs.
const contentSecurityPolicy = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; " +
	"script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes are the types of the files the console ships, by extension. The
// system's MIME tables are not consulted, so the answer is the same on every machine.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
}

// asset is one embedded file, ready to serve.
type asset struct {
	data        []byte
	contentType string
	etag        string
}

// Handler returns the handler of the console's pages, to be mounted at /console/. It
// serves index.html for /console and /console/, the embedded files by name below
// that, and 404 for anything else. It answers GET and HEAD only.
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	assets := make(map[string]asset)
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil // not part of the page (no such file is shipped)
		}
		data, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		assets[name] = asset{data: data, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return &handler{assets: assets}
}

type handler struct {
	assets map[string]asset
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-cache")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := h.assets[assetName(r.URL.Path)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}

// assetName returns the embedded file a request path names, or "" when it names
// none. Names are matched exactly against the embedded files, so ".." and other
// unclean paths name nothing.
func assetName(p string) string {
	if p == strings.TrimSuffix(Prefix, "/") || p == Prefix {
		return "index.html"
	}
	name, ok := strings.CutPrefix(p, Prefix)
	if !ok || !fs.ValidPath(name) {
		return ""
	}
	return name
}
