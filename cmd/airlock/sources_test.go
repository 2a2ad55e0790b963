package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
	"github.com/airlock-dev/airlock/source/fakehub"
)

// resolveWith runs openSource and Resolve with the given bundle arguments,
// as `airlock bundle` does.
func resolveWith(t *testing.T, args ...string) (*source.Snapshot, error) {
	t.Helper()
	var snap *source.Snapshot
	app := &cli.App{
		Name: "airlock",
		Commands: []*cli.Command{interspersedCommand(&cli.Command{
			Name:  "bundle",
			Flags: sourceFlags(),
			Action: func(c *cli.Context) error {
				src, err := openSource(c)
				if err != nil {
					return err
				}
				snap, err = src.Resolve(c.Context)
				return err
			},
		})},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.RunContext(context.Background(), append([]string{"airlock", "bundle"}, args...))
	return snap, err
}

func quietLogs(t *testing.T) {
	t.Helper()
	old := progress.Logger()
	progress.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { progress.SetLogger(old) })
}

func fileMap(snap *source.Snapshot) map[string]manifests.File {
	m := map[string]manifests.File{}
	for _, f := range snap.Files {
		m[f.Entry.Path] = f.Entry
	}
	return m
}

// TestBundleFromHubVerifyAndRun is the online-to-intranet path through
// the real commands: airlock bundle modelscope://qwen/Qwen1.5-0.5B-Chat@master
// from the fake hub (with a connection dropped mid-file and a
// cross-compiled linux/amd64 runtime), airlock verify --out D, then
// D/bin/linux-amd64/airlock --version.
func TestBundleFromHubVerifyAndRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds airlock; skipped with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs the Go toolchain on PATH to cross-compile the runtime: %v", err)
		}
		t.Skipf("no Go toolchain: %v", err)
	}
	quietLogs(t)
	hub := fakehub.New()
	defer hub.Close()
	m := fakehub.QwenChat(200_000)
	hub.AddModel(m)
	hub.Inject(m.ID, "model.safetensors", fakehub.Fault{Kind: fakehub.Drop, Bytes: 70_000})
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	lock := filepath.Join(tmp, "q.lock.json")

	pubText, privText, err := signing.GenerateKeyCost(nil, signing.KeyCost{})
	if err != nil {
		t.Fatal(err)
	}
	key, pubKey := filepath.Join(tmp, "k.key"), filepath.Join(tmp, "k.pub")
	if err := os.WriteFile(key, privText, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubKey, pubText, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "q.tar.zst")
	if code := run([]string{"airlock", "bundle", "modelscope://qwen/Qwen1.5-0.5B-Chat@master",
		"--endpoint", hub.URL, "--sign", key, "--out", out,
		"--cache-dir", cache, "--platforms", "linux/amd64", "--lock", lock}); code != exitOK {
		t.Fatalf("airlock bundle exit %d", code)
	}
	if r := hub.Requests("model.safetensors"); len(r) != 2 || r[1].Range != "bytes=70000-199999" {
		t.Fatalf("weights requests %+v", r)
	}
	if _, err := manifests.LoadLock(lock); err != nil {
		t.Fatalf("lock not written: %v", err)
	}
	dir := filepath.Join(tmp, "D")
	if code := run([]string{"airlock", "verify", out, "--pubkey", pubKey, "--out", dir}); code != exitOK {
		t.Fatalf("airlock verify exit %d", code)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ".airlock", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	man, err := manifests.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if man.Source.Kind != "modelscope" || man.Source.ID != m.ID || man.Source.Revision != "master" {
		t.Fatalf("manifest source %+v", man.Source)
	}
	if len(man.Files) != len(fakehub.QwenChatFiles)+1 {
		t.Fatalf("manifest has %d files", len(man.Files))
	}
	rt := man.Lookup("bin/linux-amd64/airlock")
	if rt == nil || rt.Role != manifests.RoleRuntime || rt.Platform != "linux/amd64" {
		t.Fatalf("runtime entry %+v", rt)
	}
	for _, f := range m.Files {
		if f.Path == ".gitattributes" {
			if _, err := os.Stat(filepath.Join(dir, f.Path)); err == nil {
				t.Fatal(".gitattributes installed")
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil || string(b) != string(f.Data) {
			t.Fatalf("%s: installed bytes differ (%v)", f.Path, err)
		}
		if e := man.Lookup(f.Path); e == nil || e.UpstreamRevision != f.Revision || e.SHA256 != fakehub.SHA256(f.Data) {
			t.Fatalf("%s: manifest entry %+v", f.Path, e)
		}
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		cmd := exec.Command(filepath.Join(dir, "bin", "linux-amd64", "airlock"), "--version")
		got, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(got), "airlock") {
			t.Fatalf("installed airlock --version: %v: %s", err, got)
		}
	}

	// Upstream changes: the lock refuses before downloading, names the
	// file, and --update-lock accepts.
	before := len(hub.Requests(""))
	changed := fakehub.QwenChat(200_000)
	for i := range changed.Files {
		if changed.Files[i].Path == "config.json" {
			changed.Files[i].Data = []byte(`{"model_type":"qwen2","changed":true}`)
			changed.Files[i].Revision = strings.Repeat("d", 40)
		}
	}
	hub.AddModel(changed)
	_, err = resolveWith(t, "modelscope://qwen/Qwen1.5-0.5B-Chat@master", "--endpoint", hub.URL,
		"--cache-dir", cache, "--platforms", "none", "--lock", lock)
	if err == nil || !strings.Contains(err.Error(), "config.json: changed upstream") || !strings.Contains(err.Error(), "--update-lock") {
		t.Fatalf("err = %v", err)
	}
	for _, r := range hub.Requests("")[before:] {
		if r.File != "" {
			t.Fatalf("downloaded %s although the lock refused", r.File)
		}
	}
	snap, err := resolveWith(t, "modelscope://qwen/Qwen1.5-0.5B-Chat@master", "--endpoint", hub.URL,
		"--cache-dir", cache, "--platforms", "none", "--lock", lock, "--update-lock")
	if err != nil {
		t.Fatal(err)
	}
	l, _ := manifests.LoadLock(lock)
	for _, f := range l.Files {
		if f.Path == "config.json" && f.UpstreamRevision != strings.Repeat("d", 40) {
			t.Fatal("lock not updated")
		}
	}
	if n := len(hub.Requests("model.safetensors")); n != 2 {
		t.Fatalf("weights downloaded again (%d requests): cache unused", n)
	}
	if _, ok := fileMap(snap)["bin/linux-amd64/airlock"]; ok {
		t.Fatal("--platforms none still carried a runtime")
	}
}

func TestOpenSourceRecipeAndPrebuiltRuntime(t *testing.T) {
	quietLogs(t)
	hub := fakehub.New()
	defer hub.Close()
	m := fakehub.QwenChat(1000)
	m.Token = "tok-123"
	hub.AddModel(m)
	tmp := t.TempDir()
	rt := filepath.Join(tmp, "rt")
	if err := os.MkdirAll(filepath.Join(rt, "linux-arm64"), 0o755); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(rt, "airlock-linux-amd64"), []byte("amd64"), 0o755))
	must(os.WriteFile(filepath.Join(rt, "linux-arm64", "airlock"), []byte("arm64"), 0o755))
	must(os.WriteFile(filepath.Join(tmp, "NOTICE"), []byte("notice"), 0o644))
	recipe := filepath.Join(tmp, "q.yaml")
	must(os.WriteFile(recipe, []byte("source: modelscope://qwen/Qwen1.5-0.5B-Chat\nrevision: v1.0.0\nexclude: [README.md]\n"+
		"platforms: [linux/amd64, linux/arm64]\nextras:\n  - path: NOTICE\n"), 0o644))
	tokenFile := filepath.Join(tmp, "token")
	must(os.WriteFile(tokenFile, []byte("tok-123\n"), 0o644))

	args := []string{"-f", recipe, "--endpoint", hub.URL, "--cache-dir", filepath.Join(tmp, "cache"), "--runtime-dir", rt, "--token-file", tokenFile}
	if _, err := resolveWith(t, args...); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("world-readable token file accepted: %v", err)
	}
	must(os.Chmod(tokenFile, 0o600))
	t.Setenv("MODELSCOPE_API_TOKEN", "")
	snap, err := resolveWith(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	files := fileMap(snap)
	if _, ok := files["README.md"]; ok {
		t.Fatal("recipe exclude ignored")
	}
	if files["bin/linux-arm64/airlock"].Platform != "linux/arm64" || files["bin/linux-amd64/airlock"].Size != 5 {
		t.Fatalf("runtime entries %+v %+v", files["bin/linux-arm64/airlock"], files["bin/linux-amd64/airlock"])
	}
	if files["extra/NOTICE"].Role != manifests.RoleExtra {
		t.Fatal("extra missing")
	}
	if snap.Source.Revision != "v1.0.0" {
		t.Fatalf("revision %q", snap.Source.Revision)
	}
	if _, err := os.Stat(filepath.Join(tmp, "q.lock.json")); err != nil {
		t.Fatalf("recipe lock not written beside the recipe: %v", err)
	}
	for _, r := range hub.Requests("") {
		if !r.HasToken {
			t.Fatalf("request %s without the token", r.Path)
		}
	}
}

func TestOpenSourceHuggingFaceWithLock(t *testing.T) {
	quietLogs(t)
	hub := fakehub.New()
	defer hub.Close()
	m := fakehub.QwenChat(5000)
	m.Branches = []string{"main"}
	hub.AddModel(m)
	tmp := t.TempDir()
	lock := filepath.Join(tmp, "hf.lock.json")
	args := []string{"hf://qwen/Qwen1.5-0.5B-Chat", "--endpoint", hub.URL, "--cache-dir", filepath.Join(tmp, "c"), "--platforms", "none", "--lock", lock}
	snap, err := resolveWith(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Source.Kind != "huggingface" || snap.Source.Revision != m.Commit {
		t.Fatalf("source %+v", snap.Source)
	}
	l, err := manifests.LoadLock(lock)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range l.Files {
		if len(f.SHA256) != 64 {
			t.Fatalf("lock entry without sha256: %+v", f)
		}
	}
	// README.md is listed by git blob id only: the change is caught after
	// download, still before anything is bundled.
	changed := m
	changed.Files = append([]fakehub.File{}, m.Files...)
	for i := range changed.Files {
		if changed.Files[i].Path == "README.md" {
			changed.Files[i].Data = []byte("a new model card\n")
		}
	}
	hub.AddModel(changed)
	if _, err := resolveWith(t, args...); err == nil || !strings.Contains(err.Error(), "README.md: changed upstream") {
		t.Fatalf("err = %v", err)
	}
	if _, err := resolveWith(t, append(args, "--update-lock")...); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSourceLocalDirectory(t *testing.T) {
	quietLogs(t)
	tmp := t.TempDir()
	model := filepath.Join(tmp, "m")
	if err := os.MkdirAll(filepath.Join(model, "bin", "linux-amd64"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, body := range map[string]string{"config.json": "{}", "bin/linux-amd64/airlock": "bin", "notes.txt": "n"} {
		if err := os.WriteFile(filepath.Join(model, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An installed directory carries its runtime already: nothing is built.
	snap, err := resolveWith(t, model, "--platforms", "linux/amd64", "--exclude", "*.txt", "--cache-dir", filepath.Join(tmp, "c"))
	if err != nil {
		t.Fatal(err)
	}
	files := fileMap(snap)
	if files["bin/linux-amd64/airlock"].Platform != "linux/amd64" || files["bin/linux-amd64/airlock"].Role != manifests.RoleRuntime {
		t.Fatalf("runtime entry %+v", files["bin/linux-amd64/airlock"])
	}
	if _, ok := files["notes.txt"]; ok || len(files) != 2 {
		t.Fatalf("files %v", files)
	}
	// A recipe naming a directory gets no lock file.
	recipe := filepath.Join(tmp, "local.yaml")
	if err := os.WriteFile(recipe, []byte("source: m\nplatforms: [linux/amd64]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveWith(t, "-f", recipe, "--cache-dir", filepath.Join(tmp, "c")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "local.lock.json")); !os.IsNotExist(err) {
		t.Fatalf("lock written for a directory source: %v", err)
	}
}

func TestRuntimeFallsBackToSelfOutsideTheSourceTree(t *testing.T) {
	quietLogs(t)
	tmp := t.TempDir()
	model := filepath.Join(tmp, "m")
	if err := os.MkdirAll(model, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(tmp) // no go.mod of airlock above: no cross-compiling
	native := runtime.GOOS + "/" + runtime.GOARCH
	snap, err := resolveWith(t, model, "--platforms", native, "--cache-dir", filepath.Join(tmp, "c"))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	st, _ := os.Stat(self)
	f := fileMap(snap)["bin/"+strings.Replace(native, "/", "-", 1)+"/airlock"]
	if f.Platform != native || f.Size != st.Size() {
		t.Fatalf("runtime entry %+v, want this binary (%d bytes)", f, st.Size())
	}
	other := "windows/arm64"
	if native == other {
		other = "linux/amd64"
	}
	_, err = resolveWith(t, model, "--platforms", other, "--cache-dir", filepath.Join(tmp, "c"))
	if err == nil || !strings.Contains(err.Error(), "--runtime-dir") || !strings.Contains(err.Error(), other) {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenSourceUsageErrors(t *testing.T) {
	quietLogs(t)
	tmp := t.TempDir()
	recipe := filepath.Join(tmp, "r.yaml")
	if err := os.WriteFile(recipe, []byte("source: modelscope://a/b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no source":               {},
		"two sources":             {"modelscope://a/b", "modelscope://c/d"},
		"recipe and source":       {"-f", recipe, "modelscope://a/b"},
		"unknown scheme":          {"s3://bucket/model"},
		"not a directory":         {filepath.Join(tmp, "missing")},
		"bad spec":                {"modelscope://only-owner"},
		"bad platform":            {"modelscope://a/b", "--platforms", "linux/sparc"},
		"http endpoint":           {"modelscope://a/b", "--endpoint", "http://hub.example.com"},
		"update lock without one": {"modelscope://a/b", "--update-lock"},
		"unpinned url extra":      {"modelscope://a/b", "--extra", "https://example.com/x.pdf"},
		"bad glob":                {"modelscope://a/b", "--include", "["},
		"bad recipe":              {"-f", filepath.Join(tmp, "nope.yaml")},
		"bad jobs":                {"modelscope://a/b", "--jobs", "0"},
		"lock with a directory":   {tmp, "--lock", filepath.Join(tmp, "l.json")},
	} {
		_, err := resolveWith(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%s: err = %v, want a usage error", name, err)
		}
	}
}

func TestParseExtra(t *testing.T) {
	sha := strings.Repeat("a", 64)
	e, err := parseExtra("https://example.com/a/b.pdf#sha256=" + sha)
	if err != nil || e.URL != "https://example.com/a/b.pdf" || e.SHA256 != sha || e.DestPath() != "extra/b.pdf" {
		t.Fatalf("%+v %v", e, err)
	}
	if e, err := parseExtra("docs/x.txt"); err != nil || e.Path != "docs/x.txt" {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := parseExtra("x#md5=1"); err == nil {
		t.Fatal("accepted md5 pin")
	}
}
