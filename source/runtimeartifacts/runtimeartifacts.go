// Package runtimeartifacts adds what the intranet host needs besides the
// model to a bundle: airlock binaries for the target platforms (the
// "wheels" of this project; cross-compiled reproducibly from the airlock
// source tree, or taken prebuilt from a directory) and extra artifacts
// (local files or https URLs pinned by sha256).
package runtimeartifacts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
	"github.com/airlock-dev/airlock/source/fetch"
)

// ModulePath is the airlock Go module.
const ModulePath = "github.com/airlock-dev/airlock"

// DefaultPlatforms are bundled when none are requested.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64"}

// KnownPlatforms are the targets airlock builds for.
var KnownPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/arm64", "darwin/amd64", "windows/amd64", "windows/arm64"}

// CheckPlatform accepts one of KnownPlatforms.
func CheckPlatform(p string) error {
	for _, k := range KnownPlatforms {
		if p == k {
			return nil
		}
	}
	return fmt.Errorf("unsupported platform %q (supported: %s)", p, strings.Join(KnownPlatforms, ", "))
}

// ParsePlatforms splits a comma-separated list; "none" means no runtime.
func ParsePlatforms(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "none" {
		return []string{}, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if err := CheckPlatform(p); err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no platforms given (use \"none\" for a bundle without runtime)")
	}
	return out, nil
}

// BinaryPath is where a platform's airlock lives in a bundle and in an
// installed directory: bin/<os>-<arch>/airlock[.exe].
func BinaryPath(platform string) string {
	goos, arch, _ := strings.Cut(platform, "/")
	return "bin/" + goos + "-" + arch + "/airlock" + exeSuffix(goos)
}

func exeSuffix(goos string) string {
	if goos == "windows" {
		return ".exe"
	}
	return ""
}

// Provider produces the airlock binary for a platform.
type Provider interface {
	Binary(ctx context.Context, platform string) (path string, err error)
}

// Prebuilt takes binaries from a directory, named airlock-<os>-<arch>[.exe]
// or <os>-<arch>/airlock[.exe].
type Prebuilt struct{ Dir string }

// Binary finds the platform's binary in the directory.
func (p Prebuilt) Binary(_ context.Context, platform string) (string, error) {
	goos, arch, _ := strings.Cut(platform, "/")
	exe := exeSuffix(goos)
	tried := []string{
		filepath.Join(p.Dir, "airlock-"+goos+"-"+arch+exe),
		filepath.Join(p.Dir, goos+"-"+arch, "airlock"+exe),
	}
	for _, c := range tried {
		st, err := os.Stat(c)
		if err == nil && st.Mode().IsRegular() {
			return c, nil
		}
	}
	return "", fmt.Errorf("runtime dir %s: no airlock binary for %s (looked for %s)", p.Dir, platform, strings.Join(tried, ", "))
}

// Self provides the running airlock binary for its own platform only: the
// fallback when there is no Go toolchain or source tree. Other platforms
// fail with Reason, which should say how to get them.
type Self struct {
	Reason error
}

// Binary returns os.Executable() for the running platform.
func (s Self) Binary(_ context.Context, platform string) (string, error) {
	if platform != runtime.GOOS+"/"+runtime.GOARCH {
		return "", fmt.Errorf("cannot produce airlock for %s: %w", platform, s.Reason)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate the running airlock: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return exe, nil
}

// Builder cross-compiles airlock from its source tree with the Go
// toolchain: CGO_ENABLED=0, -trimpath, no build id, no VCS stamp and the
// version set by -ldflags, so the same tree and toolchain give the same
// bytes.
type Builder struct {
	// ModuleRoot is the airlock source tree (the directory with go.mod).
	ModuleRoot string
	// Package is the main package to build; "./cmd/airlock" if empty.
	Package string
	// VersionVar is the string variable stamped with Version;
	// ModulePath+"/internal/version.Version" if empty.
	VersionVar string
	// Version is stamped into the binary.
	Version string
	// Go is the go command; "go" on PATH (then $GOROOT/bin/go) if empty.
	Go string
	// WorkDir receives the built binaries; a temporary directory if empty.
	WorkDir string
	// Log receives the build commands; progress.Logger() if nil.
	Log interface {
		Info(msg string, args ...any)
	}
}

// NewBuilder finds the airlock source tree (from the working directory
// upward) and the Go toolchain, or explains what is missing.
func NewBuilder(version string) (*Builder, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := FindModuleRoot(wd)
	if err != nil {
		return nil, err
	}
	goCmd, err := FindGo()
	if err != nil {
		return nil, err
	}
	return &Builder{ModuleRoot: root, Version: version, Go: goCmd}, nil
}

// FindModuleRoot walks up from dir to the directory whose go.mod declares
// the airlock module.
func FindModuleRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePathOf(b) == ModulePath {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no airlock source tree (go.mod of %s) at or above %s: run from the source tree, or pass prebuilt binaries with --runtime-dir", ModulePath, dir)
		}
		d = parent
	}
}

func modulePathOf(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// FindGo locates the go command.
func FindGo() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go"+exeSuffix(runtime.GOOS))
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p, nil
	}
	return "", errors.New("no Go toolchain found (go not on PATH): install Go, or pass prebuilt binaries with --runtime-dir")
}

// Binary builds airlock for the platform and returns the binary's path.
func (b *Builder) Binary(ctx context.Context, platform string) (string, error) {
	goos, arch, ok := strings.Cut(platform, "/")
	if !ok {
		return "", fmt.Errorf("platform %q is not os/arch", platform)
	}
	work := b.WorkDir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "airlock-build-"); err != nil {
			return "", err
		}
		b.WorkDir = work
	}
	out := filepath.Join(work, goos+"-"+arch, "airlock"+exeSuffix(goos))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	pkg := b.Package
	if pkg == "" {
		pkg = "./cmd/airlock"
	}
	vv := b.VersionVar
	if vv == "" {
		vv = ModulePath + "/internal/version.Version"
	}
	goCmd := b.Go
	if goCmd == "" {
		var err error
		if goCmd, err = FindGo(); err != nil {
			return "", err
		}
	}
	args := []string{"build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= -X " + vv + "=" + b.Version, "-o", out, pkg}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = b.ModuleRoot
	cmd.Env = append(filteredEnv(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+arch, "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	log := b.Log
	if log == nil {
		log = progress.Logger()
	}
	start := time.Now()
	log.Info("building runtime", "platform", platform, "version", b.Version, "dir", b.ModuleRoot)
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return "", fmt.Errorf("build airlock for %s: %w\n%s", platform, err, msg)
	}
	log.Info("built runtime", "platform", platform, "elapsed_ms", time.Since(start).Milliseconds())
	return out, nil
}

// filteredEnv drops variables that would change the build's output.
func filteredEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "CGO_ENABLED", "GOOS", "GOARCH", "GOFLAGS", "GOTOOLCHAIN", "GOAMD64", "GOARM64", "GOEXPERIMENT", "CC", "CGO_CFLAGS", "CGO_LDFLAGS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Options say which artifacts Wrap adds.
type Options struct {
	// Platforms to carry a runtime for; none if empty.
	Platforms []string
	// Provider produces the binaries (a Builder or Prebuilt).
	Provider Provider
	// Extras are added under their DestPath.
	Extras []manifests.Extra
	// Cache stores copies of every artifact, so the snapshot's files stay
	// put while the bundle is written; required.
	Cache *fetch.Cache
	// Fetch downloads URL extras; required when an extra has a URL.
	Fetch *fetch.Client
}

// Wrap returns a Source whose snapshot is model's plus the runtime
// binaries (role runtime, with their platform) and extras (role extra).
func Wrap(model source.Source, opt Options) source.Source {
	return &wrapped{model: model, opt: opt}
}

type wrapped struct {
	model source.Source
	opt   Options
}

func (w *wrapped) Resolve(ctx context.Context) (*source.Snapshot, error) {
	snap, err := w.model.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	extra, err := Artifacts(ctx, w.opt)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, f := range snap.Files {
		have[f.Entry.Path] = true
	}
	out := &source.Snapshot{Source: snap.Source, Files: append([]source.File{}, snap.Files...)}
	for _, f := range extra {
		if have[f.Entry.Path] {
			return nil, fmt.Errorf("artifact %s clashes with a model file of the same path", f.Entry.Path)
		}
		have[f.Entry.Path] = true
		out.Files = append(out.Files, f)
	}
	sort.Slice(out.Files, func(i, j int) bool { return out.Files[i].Entry.Path < out.Files[j].Entry.Path })
	return out, nil
}

// Artifacts produces the runtime binaries and extras as snapshot files,
// each copied into the cache and hashed.
func Artifacts(ctx context.Context, opt Options) ([]source.File, error) {
	if opt.Cache == nil {
		return nil, errors.New("runtime artifacts: no cache configured")
	}
	var files []source.File
	if len(opt.Platforms) > 0 {
		if opt.Provider == nil {
			return nil, errors.New("runtime artifacts: no way to get airlock binaries (no Go toolchain and source tree, no --runtime-dir)")
		}
		// Progress is one line per platform: builds take tens of seconds
		// each and report their own start and end.
		log := progress.Logger()
		for i, p := range opt.Platforms {
			bin, err := opt.Provider.Binary(ctx, p)
			if err != nil {
				return nil, err
			}
			f, err := cached(opt.Cache, bin, "")
			if err != nil {
				return nil, fmt.Errorf("runtime %s: %w", p, err)
			}
			f.Entry.Path, f.Entry.Role, f.Entry.Platform = BinaryPath(p), manifests.RoleRuntime, p
			files = append(files, f)
			log.Info("runtime binary ready", "platform", p, "n", i+1, "of", len(opt.Platforms),
				"bytes", f.Entry.Size, "sha256", f.Entry.SHA256)
		}
	}
	var urlItems []fetch.Item
	var urlExtras []manifests.Extra
	for _, e := range opt.Extras {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("extra %s%s: %w", e.Path, e.URL, err)
		}
		if e.URL != "" {
			urlItems = append(urlItems, fetch.Item{Name: e.DestPath(), URL: e.URL, Size: -1, SHA256: e.SHA256})
			urlExtras = append(urlExtras, e)
			continue
		}
		f, err := cached(opt.Cache, e.Path, e.SHA256)
		if err != nil {
			return nil, fmt.Errorf("extra %s: %w", e.Path, err)
		}
		f.Entry.Path, f.Entry.Role = e.DestPath(), manifests.RoleExtra
		files = append(files, f)
	}
	if len(urlItems) > 0 {
		if opt.Fetch == nil {
			return nil, errors.New("extras: no downloader configured for URL extras")
		}
		res, err := opt.Fetch.FetchAll(ctx, "download extras", urlItems)
		if err != nil {
			return nil, fmt.Errorf("extras: %w", err)
		}
		for i, r := range res {
			p := r.Path
			files = append(files, source.File{
				Entry: manifests.File{Path: urlExtras[i].DestPath(), Size: r.Size, SHA256: r.SHA256, Role: manifests.RoleExtra},
				Open:  func(context.Context) (io.ReadCloser, error) { return os.Open(p) },
			})
		}
	}
	return files, nil
}

// cached copies a local file into the cache (verifying wantSHA if set) and
// returns a snapshot file reading the cached copy.
func cached(c *fetch.Cache, file, wantSHA string) (source.File, error) {
	f, err := os.Open(file)
	if err != nil {
		return source.File{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return source.File{}, err
	}
	if !st.Mode().IsRegular() {
		return source.File{}, fmt.Errorf("%s: not a regular file", file)
	}
	p, sha, err := c.Put(f, wantSHA)
	if err != nil {
		return source.File{}, fmt.Errorf("%s: %w", file, err)
	}
	cst, err := os.Stat(p)
	if err != nil {
		return source.File{}, err
	}
	return source.File{
		Entry: manifests.File{Size: cst.Size(), SHA256: sha},
		Open:  func(context.Context) (io.ReadCloser, error) { return os.Open(p) },
	}, nil
}
