package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/internal/version"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
	"github.com/airlock-dev/airlock/source/fetch"
	"github.com/airlock-dev/airlock/source/hf"
	"github.com/airlock-dev/airlock/source/local"
	"github.com/airlock-dev/airlock/source/modelscope"
	"github.com/airlock-dev/airlock/source/runtimeartifacts"
)

// sourceFlags are the `airlock bundle` flags that choose and configure the
// source (endpoints, tokens, caches, recipes, runtime targets).
func sourceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "recipe", Aliases: []string{"f"}, Usage: "bundle what the recipe `FILE` says (source, revision, globs, platforms, extras); see manifests/*.yaml"},
		&cli.StringFlag{Name: "endpoint", Usage: "hub base `URL` (default: $MODELSCOPE_DOMAIN or https://www.modelscope.cn; $HF_ENDPOINT or https://huggingface.co)"},
		&cli.StringFlag{Name: "token-file", Usage: "read the hub token from `FILE` (mode 0600); default $MODELSCOPE_API_TOKEN or $HF_TOKEN. Never logged or bundled"},
		&cli.StringFlag{Name: "cache-dir", EnvVars: []string{"AIRLOCK_CACHE_DIR"}, Usage: "download cache `DIR` (default: the user cache dir/airlock)"},
		&cli.StringFlag{Name: "lock", Usage: "lock `FILE`: written after the first resolve; later bundles refuse if upstream changed (default with -f: beside the recipe)"},
		&cli.BoolFlag{Name: "update-lock", Usage: "accept upstream changes and rewrite the lock file"},
		&cli.StringFlag{Name: "platforms", EnvVars: []string{"AIRLOCK_PLATFORMS"}, Value: strings.Join(runtimeartifacts.DefaultPlatforms, ","),
			Usage: "comma-separated os/arch `LIST` to carry airlock binaries for (" + strings.Join(runtimeartifacts.KnownPlatforms, ", ") + "), or none"},
		&cli.StringFlag{Name: "runtime-dir", EnvVars: []string{"AIRLOCK_RUNTIME_DIR"}, Usage: "take prebuilt binaries from `DIR` (airlock-<os>-<arch>[.exe] or <os>-<arch>/airlock[.exe]) instead of cross-compiling"},
		&cli.StringSliceFlag{Name: "extra", Usage: "carry an extra artifact `SRC`: a file path, or an https URL pinned as URL#sha256=HEX (a path may be pinned the same way); repeatable"},
		&cli.StringSliceFlag{Name: "include", Usage: "only bundle files matching `GLOB` (repeatable)"},
		&cli.StringSliceFlag{Name: "exclude", Usage: "skip files matching `GLOB` (repeatable)"},
		&cli.IntFlag{Name: "jobs", Value: 4, Usage: "parallel download connections `N`"},
		&cli.BoolFlag{Name: "trust-unlisted-checksums", Usage: "download files the hub lists without a checksum, checking only their size (trust on first use; use with --lock)"},
	}
}

// sourceConfig is what the flags and the recipe resolve to.
type sourceConfig struct {
	spec, revision, endpoint, token string
	include, exclude                []string
	platforms                       []string
	runtimeDir                      string
	extras                          []manifests.Extra
	cacheDir                        string
	lockPath                        string
	updateLock                      bool
	trustUnlisted                   bool
	jobs                            int
}

// openSource turns `airlock bundle`'s arguments and flags into a Source:
// the model (a ModelScope or Hugging Face hub, or a local directory, named
// by the SOURCE argument or the recipe) plus the runtime binaries and
// extra artifacts, checked against and recorded in the lock file.
func openSource(c *cli.Context) (source.Source, error) {
	cfg, err := sourceConfigFrom(c)
	if err != nil {
		return nil, err
	}
	cache := &fetch.Cache{Dir: cfg.cacheDir}
	fc := &fetch.Client{Cache: cache, Jobs: cfg.jobs, UserAgent: modelscope.UserAgent(), Progress: os.Stderr}

	// A lock checks a hub's listing before anything is downloaded.
	var lock *lockGuard
	var beforeDownload func(*source.Snapshot) error
	if cfg.lockPath != "" {
		lock = &lockGuard{path: cfg.lockPath, update: cfg.updateLock}
		beforeDownload = lock.checkListing
	}
	var model source.Source
	switch {
	case strings.HasPrefix(cfg.spec, modelscope.Scheme):
		id, rev, err := modelscope.ParseSpec(cfg.spec)
		if err != nil {
			return nil, usagef("bundle: %v", err)
		}
		if cfg.revision != "" {
			rev = cfg.revision
		}
		s := &modelscope.Source{Endpoint: cfg.endpoint, Token: cfg.token, Model: id, Revision: rev,
			Include: cfg.include, Exclude: cfg.exclude, Fetch: fc, TrustUnlisted: cfg.trustUnlisted,
			BeforeDownload: beforeDownload}
		if s.Token == "" {
			s.Token = modelscope.TokenFromEnv()
		}
		model = s
	case hf.IsSpec(cfg.spec):
		id, rev, err := hf.ParseSpec(cfg.spec)
		if err != nil {
			return nil, usagef("bundle: %v", err)
		}
		if cfg.revision != "" {
			rev = cfg.revision
		}
		s := &hf.Source{Endpoint: cfg.endpoint, Token: cfg.token, Model: id, Revision: rev,
			Include: cfg.include, Exclude: cfg.exclude, Fetch: fc, TrustUnlisted: cfg.trustUnlisted,
			BeforeDownload: beforeDownload}
		if s.Token == "" {
			s.Token = hf.TokenFromEnv()
		}
		model = s
	case strings.Contains(cfg.spec, "://"):
		return nil, usagef("bundle: unknown source scheme in %q (want modelscope://, hf:// or a directory)", cfg.spec)
	default:
		st, err := os.Stat(cfg.spec)
		if err != nil || !st.IsDir() {
			return nil, usagef("bundle: SOURCE %q is neither modelscope://owner/name, hf://owner/name nor a model directory", cfg.spec)
		}
		model = localSource{dir: local.Dir{Root: cfg.spec}, include: cfg.include, exclude: cfg.exclude}
		// Locks pin what a hub serves; a directory's content is pinned by
		// the bundle's own manifest.
		if c.IsSet("lock") || cfg.updateLock {
			return nil, usagef("bundle: --lock and --update-lock apply to hub sources, not to a local directory")
		}
		lock = nil
	}
	if lock != nil {
		model = lockedSource{model: model, lock: lock}
	}
	return &bundleSource{model: model, cfg: cfg, cache: cache, fetch: fc}, nil
}

func sourceConfigFrom(c *cli.Context) (*sourceConfig, error) {
	cfg := &sourceConfig{spec: c.Args().First(), jobs: c.Int("jobs"), updateLock: c.Bool("update-lock"),
		trustUnlisted: c.Bool("trust-unlisted-checksums")}
	if c.NArg() > 1 {
		return nil, usagef("bundle: one SOURCE expected, got %d arguments", c.NArg())
	}
	if cfg.jobs < 1 || cfg.jobs > 64 {
		return nil, usagef("bundle: --jobs must be between 1 and 64")
	}
	platforms := c.String("platforms")
	if rf := c.String("recipe"); rf != "" {
		if cfg.spec != "" {
			return nil, usagef("bundle: give either SOURCE or --recipe, not both")
		}
		r, err := manifests.LoadRecipe(rf)
		if err != nil {
			return nil, usagef("bundle: %v", err)
		}
		cfg.spec, cfg.revision, cfg.endpoint = r.Source, r.Revision, r.Endpoint
		cfg.include, cfg.exclude, cfg.extras, cfg.lockPath = r.Include, r.Exclude, r.Extras, r.Lock
		if len(r.Platforms) > 0 && !c.IsSet("platforms") {
			platforms = strings.Join(r.Platforms, ",")
		}
	}
	if cfg.spec == "" {
		return nil, usagef("bundle: missing SOURCE (modelscope://owner/name[@rev], hf://owner/name[@rev] or a model directory) or --recipe FILE")
	}
	if c.IsSet("endpoint") {
		cfg.endpoint = c.String("endpoint")
	}
	if cfg.endpoint != "" {
		if _, err := fetch.CheckEndpoint(cfg.endpoint); err != nil {
			return nil, usagef("bundle: --endpoint: %v", err)
		}
	}
	if c.IsSet("include") {
		cfg.include = c.StringSlice("include")
	}
	if c.IsSet("exclude") {
		cfg.exclude = c.StringSlice("exclude")
	}
	for _, g := range append(append([]string{}, cfg.include...), cfg.exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return nil, usagef("bundle: bad glob %q", g)
		}
	}
	if c.IsSet("lock") {
		cfg.lockPath = c.String("lock")
	}
	if cfg.updateLock && cfg.lockPath == "" {
		return nil, usagef("bundle: --update-lock needs a lock file (--lock FILE or --recipe)")
	}
	var err error
	if cfg.platforms, err = runtimeartifacts.ParsePlatforms(platforms); err != nil {
		return nil, usagef("bundle: --platforms: %v", err)
	}
	cfg.runtimeDir = c.String("runtime-dir")
	for _, spec := range c.StringSlice("extra") {
		e, err := parseExtra(spec)
		if err != nil {
			return nil, usagef("bundle: --extra %s: %v", spec, err)
		}
		cfg.extras = append(cfg.extras, e)
	}
	if tf := c.String("token-file"); tf != "" {
		if cfg.token, err = readTokenFile(tf); err != nil {
			return nil, err
		}
	}
	cfg.cacheDir = c.String("cache-dir")
	if cfg.cacheDir == "" {
		if cfg.cacheDir, err = fetch.DefaultDir(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// parseExtra reads "PATH", "PATH#sha256=HEX" or "https://...#sha256=HEX".
func parseExtra(spec string) (manifests.Extra, error) {
	var e manifests.Extra
	src, pin, pinned := strings.Cut(spec, "#")
	if pinned {
		hex, ok := strings.CutPrefix(pin, "sha256=")
		if !ok {
			return e, errors.New("pin must be #sha256=HEX")
		}
		e.SHA256 = strings.ToLower(hex)
	}
	if strings.Contains(src, "://") {
		e.URL = src
	} else {
		e.Path = src
	}
	return e, e.Validate()
}

// readTokenFile reads a token, refusing files others may read.
func readTokenFile(p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s: readable by others (mode %v); chmod 600 it", p, st.Mode().Perm())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, "\r\n\t ;") {
		return "", fmt.Errorf("token file %s: want one token on one line", p)
	}
	return tok, nil
}

// localSource is a model directory: include/exclude applied, and runtime
// binaries already in it (a re-bundled installed directory) given their
// platform from bin/<os>-<arch>/.
type localSource struct {
	dir              local.Dir
	include, exclude []string
}

func (l localSource) Resolve(ctx context.Context) (*source.Snapshot, error) {
	snap, err := l.dir.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	kept := snap.Files[:0]
	for _, f := range snap.Files {
		if f.Entry.Role == manifests.RoleRuntime {
			if p := platformOf(f.Entry.Path); p != "" {
				f.Entry.Platform = p
			} else {
				f.Entry.Role = manifests.RoleExtra
			}
		}
		if f.Entry.Role == manifests.RoleRuntime || manifests.MatchGlobs(l.include, l.exclude, f.Entry.Path) {
			kept = append(kept, f)
		}
	}
	snap.Files = kept
	return snap, nil
}

// platformOf maps bin/<os>-<arch>/airlock[.exe] to "os/arch".
func platformOf(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) != 3 || parts[0] != "bin" || strings.TrimSuffix(parts[2], ".exe") != "airlock" {
		return ""
	}
	goos, arch, ok := strings.Cut(parts[1], "-")
	if !ok {
		return ""
	}
	plat := goos + "/" + arch
	if runtimeartifacts.CheckPlatform(plat) != nil || runtimeartifacts.BinaryPath(plat) != p {
		return ""
	}
	return plat
}

// lockGuard compares what a source resolves to with a lock file, and
// writes the lock when there is none yet or an update was asked for.
type lockGuard struct {
	path   string
	update bool
}

func (g *lockGuard) compare(snap *source.Snapshot, complete bool) error {
	if g.update {
		return nil
	}
	old, err := manifests.LoadLock(g.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var files []manifests.File
	for _, f := range snap.Files {
		if f.Entry.SHA256 == "" && !complete {
			return nil // listed by git id only: compare after download
		}
		files = append(files, f.Entry)
	}
	if d := old.Diff(manifests.NewLock(snap.Source, files)); d != nil {
		return fmt.Errorf("upstream differs from lock %s (bundle refused; rerun with --update-lock to accept):\n  %s",
			g.path, strings.Join(d, "\n  "))
	}
	return nil
}

func (g *lockGuard) checkListing(snap *source.Snapshot) error { return g.compare(snap, false) }

// lockedSource checks the lock after resolving and records the lock.
type lockedSource struct {
	model source.Source
	lock  *lockGuard
}

func (l lockedSource) Resolve(ctx context.Context) (*source.Snapshot, error) {
	snap, err := l.model.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.lock.compare(snap, true); err != nil {
		return nil, err
	}
	var files []manifests.File
	for _, f := range snap.Files {
		if f.Entry.Role != manifests.RoleRuntime {
			files = append(files, f.Entry)
		}
	}
	nl := manifests.NewLock(snap.Source, files)
	old, err := manifests.LoadLock(l.lock.path)
	if err == nil && old.Diff(nl) == nil {
		return snap, nil
	}
	if err := nl.Save(l.lock.path); err != nil {
		return nil, err
	}
	progress.Logger().Info("wrote lock file", "path", l.lock.path, "files", len(nl.Files))
	return snap, nil
}

// bundleSource adds the runtime binaries and extras to the model.
type bundleSource struct {
	model source.Source
	cfg   *sourceConfig
	cache *fetch.Cache
	fetch *fetch.Client
}

func (b *bundleSource) Resolve(ctx context.Context) (*source.Snapshot, error) {
	snap, err := b.model.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	// Platforms the model directory already carries are kept, not rebuilt.
	var need []string
	for _, p := range b.cfg.platforms {
		present := false
		for _, f := range snap.Files {
			present = present || f.Entry.Platform == p
		}
		if !present {
			need = append(need, p)
		}
	}
	opt := runtimeartifacts.Options{Platforms: need, Extras: b.cfg.extras, Cache: b.cache, Fetch: b.fetch}
	if len(need) > 0 {
		if b.cfg.runtimeDir != "" {
			opt.Provider = runtimeartifacts.Prebuilt{Dir: b.cfg.runtimeDir}
		} else {
			builder, err := runtimeartifacts.NewBuilder(version.String())
			if err != nil {
				// No toolchain or tree: this very binary still serves its own platform.
				progress.Logger().Warn("cannot cross-compile the runtime; only this airlock's own platform is available",
					"reason", err.Error(), "platform", runtime.GOOS+"/"+runtime.GOARCH)
				opt.Provider = runtimeartifacts.Self{Reason: fmt.Errorf("%w (or --platforms %s, or --platforms none)", err, runtime.GOOS+"/"+runtime.GOARCH)}
				return runtimeartifacts.Wrap(staticSource{snap}, opt).Resolve(ctx)
			}
			if err := os.MkdirAll(b.cfg.cacheDir, 0o755); err != nil {
				return nil, err
			}
			work, err := os.MkdirTemp(b.cfg.cacheDir, "build-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(work)
			builder.WorkDir = work
			opt.Provider = builder
		}
	}
	return runtimeartifacts.Wrap(staticSource{snap}, opt).Resolve(ctx)
}

type staticSource struct{ snap *source.Snapshot }

func (s staticSource) Resolve(context.Context) (*source.Snapshot, error) { return s.snap, nil }
