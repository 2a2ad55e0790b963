// Package webui serves airlock's chat page: one HTML page, its script and
// style, and the vendored Markdown renderer (marked) and HTML sanitizer
// (DOMPurify), all embedded in the binary. The page makes requests to its
// own origin only, which a strict Content-Security-Policy enforces.
//
// The vendored files under static/vendor are copied from npm by build.mjs
// (see package.json); they are committed so that go build needs no npm.
package webui

//go:generate npm ci --no-audit --no-fund
//go:generate node build.mjs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

// CSP is the Content-Security-Policy of every response: scripts, styles,
// connections and images from the page's own origin only; no plugins, no
// framing, no <base> and no form posts.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// AssetPrefix is the URL path under which the page's files are served.
const AssetPrefix = "/assets/"

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the chat page at / (and /index.html) and its files under
// /assets/. Other paths get 404, and methods other than GET and HEAD 405.
func Handler() http.Handler {
	h := &handler{assets: map[string]asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js", ".mjs":
			ctype = "text/javascript; charset=utf-8"
		case ".txt", ".LICENSE", "":
			ctype = "text/plain; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		}
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		h.assets[strings.TrimPrefix(p, "static/")] = asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("webui: embedded files unreadable: " + err.Error()) // cannot happen with go:embed
	}
	return h
}

type handler struct {
	assets map[string]asset
}

var modTime = time.Time{} // embedded files carry no time; ETags do the caching

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	hdr.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var name string
	switch p := r.URL.Path; {
	case p == "/" || p == "/index.html":
		name = "index.html"
	case strings.HasPrefix(p, AssetPrefix) && p != AssetPrefix+"index.html":
		name = strings.TrimPrefix(p, AssetPrefix)
	}
	a, ok := h.assets[name]
	if !ok || name == "" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	hdr.Set("Content-Type", a.ctype)
	hdr.Set("ETag", a.etag)
	// The page can change with each airlock build; revalidate every time
	// (a 304 costs one round trip on loopback or the intranet).
	hdr.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, modTime, bytes.NewReader(a.body))
}
