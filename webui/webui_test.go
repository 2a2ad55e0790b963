package webui

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPageAndHeaders(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/", "/index.html"} {
		rec := get(t, h, http.MethodGet, p, nil)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", p, rec.Code, rec.Header().Get("Content-Type"))
		}
		if !strings.Contains(rec.Body.String(), `<script type="module" src="assets/app.js">`) {
			t.Errorf("%s does not load the app script", p)
		}
		want := map[string]string{
			"Content-Security-Policy": CSP,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
		}
		for k, v := range want {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", p, k, got, v)
			}
		}
	}
	if !strings.HasPrefix(CSP, "default-src 'self'") || strings.Contains(CSP, "unsafe") || strings.Contains(CSP, "*") {
		t.Errorf("CSP is not strict: %s", CSP)
	}
}

func TestErrorsAndCaching(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/assets/", "/assets/../webui.go", "/assets/index.html", "/static/app.js"} {
		if rec := get(t, h, http.MethodGet, p, nil); rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
	rec := get(t, h, http.MethodPost, "/", nil)
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}
	rec = get(t, h, http.MethodGet, "/assets/app.js", nil)
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || etag == "" || rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("app.js: %d etag %q type %q", rec.Code, etag, rec.Header().Get("Content-Type"))
	}
	if rec := get(t, h, http.MethodGet, "/assets/app.js", map[string]string{"If-None-Match": etag}); rec.Code != 304 {
		t.Errorf("revalidation: %d, want 304", rec.Code)
	}
	if rec := get(t, h, http.MethodHead, "/", nil); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD /: %d with %d body bytes", rec.Code, rec.Body.Len())
	}
}

// TestReferencesResolve follows every file the page and its modules name
// and checks each is served, and that none points off the origin.
func TestReferencesResolve(t *testing.T) {
	h := Handler()
	index := get(t, h, http.MethodGet, "/", nil).Body.String()
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names only %d files", len(refs))
	}
	for _, m := range refs {
		if strings.Contains(m[1], ":") || strings.HasPrefix(m[1], "//") {
			t.Errorf("index.html references another origin: %s", m[1])
			continue
		}
		if rec := get(t, h, http.MethodGet, "/"+m[1], nil); rec.Code != 200 {
			t.Errorf("index.html references %s: %d", m[1], rec.Code)
		}
	}
	app := get(t, h, http.MethodGet, "/assets/app.js", nil).Body.String()
	imports := regexp.MustCompile(`(?m)^import .* from "\./([^"]+)";`).FindAllStringSubmatch(app, -1)
	if len(imports) != 2 {
		t.Fatalf("app.js imports %d modules, want marked and DOMPurify", len(imports))
	}
	for _, m := range imports {
		if rec := get(t, h, http.MethodGet, AssetPrefix+m[1], nil); rec.Code != 200 {
			t.Errorf("app.js imports %s: %d", m[1], rec.Code)
		}
	}
	// The page's own files request nothing by absolute URL.
	for _, f := range []string{"index.html", "app.js", "style.css"} {
		b, _ := staticFS.ReadFile("static/" + f)
		if loc := regexp.MustCompile(`https?://|url\(`).FindIndex(b); loc != nil {
			t.Errorf("%s contains %q", f, b[loc[0]:min(loc[1]+30, len(b))])
		}
	}
	for _, call := range []string{`fetch("v1/chat/completions"`, `fetch("api/infer"`} {
		if !strings.Contains(app, call) {
			t.Errorf("app.js lacks %s", call)
		}
	}
}

// TestVendoredLibraries checks the vendored files against VERSIONS.txt
// (written by build.mjs), the pins in package.json and the lock file, and
// that each ships with its licence and without source-map references.
func TestVendoredLibraries(t *testing.T) {
	versions, err := staticFS.ReadFile("static/vendor/VERSIONS.txt")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ DevDependencies map[string]string }
	b, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct{ Version, Integrity string }
	}
	b, err = os.ReadFile("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^(\S+)@(\S+) \S+ -> (\S+) sha256:([0-9a-f]{64})$`)
	seen := 0
	for _, l := range strings.Split(strings.TrimSpace(string(versions)), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("bad VERSIONS.txt line %q", l)
		}
		name, version, file, sum := m[1], m[2], m[3], m[4]
		seen++
		if pkg.DevDependencies[name] != version {
			t.Errorf("%s: vendored %s, package.json pins %q", name, version, pkg.DevDependencies[name])
		}
		if got := lock.Packages["node_modules/"+name]; got.Version != version || got.Integrity == "" {
			t.Errorf("%s: lock file has %+v, want %s with integrity", name, got, version)
		}
		body, err := staticFS.ReadFile("static/vendor/" + file)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(body)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s changed since build.mjs copied it", file)
		}
		if strings.Contains(string(body), "sourceMappingURL") {
			t.Errorf("%s still references a source map", file)
		}
		lic, err := staticFS.ReadFile("static/vendor/" + name + ".LICENSE")
		if err != nil || len(lic) < 500 {
			t.Errorf("%s: licence missing (%v)", name, err)
		}
	}
	if seen != len(pkg.DevDependencies) {
		t.Errorf("VERSIONS.txt lists %d libraries, package.json %d", seen, len(pkg.DevDependencies))
	}
}
