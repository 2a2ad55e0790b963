package runtimeartifacts

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
	"github.com/airlock-dev/airlock/source/fakehub"
	"github.com/airlock-dev/airlock/source/fetch"
	"github.com/airlock-dev/airlock/source/local"
)

func TestMain(m *testing.M) {
	progress.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// helloModule writes a tiny main module whose binary prints its stamped version.
func helloModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.22\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nvar Version = \"unset\"\n\nfunc main() { fmt.Println(\"hello\", Version) }\n"), 0o644))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func goOrSkip(t *testing.T) string {
	t.Helper()
	g, err := FindGo()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs the Go toolchain on PATH: %v", err)
		}
		t.Skipf("no Go toolchain: %v", err)
	}
	return g
}

func TestBuilderIsReproducibleAndStamped(t *testing.T) {
	g := goOrSkip(t)
	mod := helloModule(t)
	native := runtime.GOOS + "/" + runtime.GOARCH
	var sums []string
	var bin string
	for i := range 2 {
		b := &Builder{ModuleRoot: mod, Package: ".", VersionVar: "main.Version", Version: "v9.8.7", Go: g, WorkDir: t.TempDir()}
		p, err := b.Binary(context.Background(), native)
		if err != nil {
			t.Fatal(err)
		}
		_, sha, err := (&fetch.Cache{Dir: t.TempDir()}).Put(mustOpen(t, p), "")
		must(t, err)
		sums = append(sums, sha)
		if i == 0 {
			bin = p
		}
	}
	if sums[0] != sums[1] {
		t.Fatalf("two builds differ: %s vs %s", sums[0], sums[1])
	}
	out, err := exec.Command(bin).Output()
	if err != nil || strings.TrimSpace(string(out)) != "hello v9.8.7" {
		t.Fatalf("binary says %q, %v", out, err)
	}
}

func TestBuilderReportsCompileErrors(t *testing.T) {
	g := goOrSkip(t)
	mod := helloModule(t)
	must(t, os.WriteFile(filepath.Join(mod, "main.go"), []byte("package main\nfunc main() { undefinedThing() }\n"), 0o644))
	b := &Builder{ModuleRoot: mod, Package: ".", Go: g, WorkDir: t.TempDir()}
	_, err := b.Binary(context.Background(), "linux/amd64")
	if err == nil || !strings.Contains(err.Error(), "undefinedThing") || !strings.Contains(err.Error(), "linux/amd64") {
		t.Fatalf("err = %v", err)
	}
}

func mustOpen(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFindModuleRoot(t *testing.T) {
	root, err := FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "airlock")); err != nil {
		t.Fatalf("root %s has no cmd/airlock", root)
	}
	if _, err := FindModuleRoot(t.TempDir()); err == nil || !strings.Contains(err.Error(), "--runtime-dir") {
		t.Fatalf("err = %v", err)
	}
}

func TestParsePlatforms(t *testing.T) {
	got, err := ParsePlatforms("linux/amd64, darwin/arm64,linux/amd64")
	if err != nil || strings.Join(got, " ") != "linux/amd64 darwin/arm64" {
		t.Fatal(got, err)
	}
	if got, err := ParsePlatforms("none"); err != nil || len(got) != 0 {
		t.Fatal(got, err)
	}
	for _, bad := range []string{"", "linux", "plan9/386", "linux/amd64;rm"} {
		if _, err := ParsePlatforms(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if BinaryPath("windows/amd64") != "bin/windows-amd64/airlock.exe" || BinaryPath("linux/arm64") != "bin/linux-arm64/airlock" {
		t.Fatal("binary paths")
	}
}

func TestWrapAddsPrebuiltRuntimeAndExtras(t *testing.T) {
	rt := t.TempDir()
	must(t, os.WriteFile(filepath.Join(rt, "airlock-linux-amd64"), []byte("amd64 binary"), 0o755))
	must(t, os.MkdirAll(filepath.Join(rt, "windows-amd64"), 0o755))
	must(t, os.WriteFile(filepath.Join(rt, "windows-amd64", "airlock.exe"), []byte("windows binary"), 0o755))
	docs := filepath.Join(t.TempDir(), "GUIDE.pdf")
	must(t, os.WriteFile(docs, []byte("guide"), 0o644))

	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "installer bytes")
	}))
	defer srv.Close()
	cache := &fetch.Cache{Dir: t.TempDir()}
	fc := &fetch.Client{Cache: cache, HTTP: srv.Client(), Progress: io.Discard, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	model := local.Dir{Root: "../../testdata/tiny-qwen2"}
	w := Wrap(model, Options{
		Platforms: []string{"linux/amd64", "windows/amd64"},
		Provider:  Prebuilt{Dir: rt},
		Extras: []manifests.Extra{
			{Path: docs, SHA256: fakehub.SHA256([]byte("guide"))},
			{URL: srv.URL + "/dl/setup.sh?x=1", SHA256: fakehub.SHA256([]byte("installer bytes")), Dest: "extra/tools/setup.sh"},
		},
		Cache: cache, Fetch: fc,
	})
	snap, err := w.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]source.File{}
	for _, f := range snap.Files {
		byPath[f.Entry.Path] = f
	}
	for p, want := range map[string]struct {
		role     manifests.Role
		platform string
		body     string
	}{
		"bin/linux-amd64/airlock":       {manifests.RoleRuntime, "linux/amd64", "amd64 binary"},
		"bin/windows-amd64/airlock.exe": {manifests.RoleRuntime, "windows/amd64", "windows binary"},
		"extra/GUIDE.pdf":               {manifests.RoleExtra, "", "guide"},
		"extra/tools/setup.sh":          {manifests.RoleExtra, "", "installer bytes"},
	} {
		f, ok := byPath[p]
		if !ok {
			t.Fatalf("missing %s", p)
		}
		if f.Entry.Role != want.role || f.Entry.Platform != want.platform || f.Entry.SHA256 != fakehub.SHA256([]byte(want.body)) || f.Entry.Size != int64(len(want.body)) {
			t.Fatalf("%s: entry %+v", p, f.Entry)
		}
		rc, err := f.Open(context.Background())
		must(t, err)
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != want.body {
			t.Fatalf("%s: body %q", p, b)
		}
	}
	if _, ok := byPath["model.safetensors"]; !ok {
		t.Fatal("model files lost")
	}

	// A missing platform and a wrong pin are clear errors.
	_, err = Wrap(model, Options{Platforms: []string{"linux/arm64"}, Provider: Prebuilt{Dir: rt}, Cache: cache}).Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no airlock binary for linux/arm64") {
		t.Fatalf("err = %v", err)
	}
	_, err = Wrap(model, Options{Extras: []manifests.Extra{{Path: docs, SHA256: strings.Repeat("0", 64)}}, Cache: cache}).Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Fatalf("err = %v", err)
	}
	_, err = Wrap(model, Options{Extras: []manifests.Extra{{Path: docs, Dest: "config.json"}}, Cache: cache}).Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "clashes") {
		t.Fatalf("err = %v", err)
	}
}

func TestSelfProvider(t *testing.T) {
	native := runtime.GOOS + "/" + runtime.GOARCH
	p, err := Self{}.Binary(context.Background(), native)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("%s: %v", p, err)
	}
	other := "windows/arm64"
	if native == other {
		other = "linux/amd64"
	}
	reason := os.ErrNotExist
	if _, err := (Self{Reason: reason}).Binary(context.Background(), other); err == nil || !strings.Contains(err.Error(), other) {
		t.Fatalf("err = %v", err)
	}
}
