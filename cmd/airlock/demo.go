package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/auth"
	"github.com/airlock-dev/airlock/bundle"
	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/runtime"
	"github.com/airlock-dev/airlock/server"
	"github.com/airlock-dev/airlock/source/local"
	"github.com/airlock-dev/airlock/verify"
)

// demoModelDir is the built-in default model, relative to the source tree.
const demoModelDir = "testdata/tiny-qwen2"

func init() {
	register(&cli.Command{
		Name:  "demo",
		Usage: "run the whole job offline: make a key, bundle a model, verify it, serve it on 127.0.0.1",
		Description: "Runs every step of airlock on this machine with no network:\n" +
			"  1. make a minisign key pair (unencrypted, for the demo only),\n" +
			"  2. bundle the model directory (default: the built-in tiny test model, " + demoModelDir + ")\n" +
			"     from a local source into one signed bundle,\n" +
			"  3. verify the bundle and extract it into a model directory,\n" +
			"  4. serve it with the chat page, the OpenAI-compatible API and /api/infer on 127.0.0.1,\n" +
			"     behind basic auth with a generated password and with the audit log on.\n" +
			"The URL, user name and password are printed once. Ctrl-C stops the server gracefully.\n" +
			"The tiny test model has random weights: its replies are gibberish, but every step is real.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "work directory for keys, bundle, model, htpasswd and audit log (default: a new temporary directory)", EnvVars: []string{"AIRLOCK_DEMO_DIR"}},
			&cli.StringFlag{Name: "model", Usage: "model directory to bundle (default: the built-in " + demoModelDir + ")", EnvVars: []string{"AIRLOCK_DEMO_MODEL"}},
			&cli.StringFlag{Name: "listen", Usage: "loopback address to serve on (default: 127.0.0.1:8080, or the next free port)", EnvVars: []string{"AIRLOCK_LISTEN"}},
			&cli.StringFlag{Name: "user", Value: "demo", Usage: "basic-auth user name", EnvVars: []string{"AIRLOCK_DEMO_USER"}},
			&cli.IntFlag{Name: "max-tokens", Value: 128, Usage: "longest reply in tokens", EnvVars: []string{"AIRLOCK_MAX_TOKENS"}},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("demo: takes no arguments")
			}
			opts := demoOptions{
				Dir:       c.String("dir"),
				Model:     c.String("model"),
				Listen:    c.String("listen"),
				User:      c.String("user"),
				Password:  os.Getenv("AIRLOCK_DEMO_PASSWORD"),
				MaxTokens: c.Int("max-tokens"),
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, opts, os.Stdout, os.Stderr, nil)
		},
	})
}

// demoOptions are the settings of one demo run.
type demoOptions struct {
	Dir       string // work directory; a new temporary one when empty
	Model     string // model directory to bundle; the built-in test model when empty
	Listen    string // loopback host:port; 127.0.0.1:8080 or the next free port when empty
	User      string // basic-auth user
	Password  string // basic-auth password; generated when empty
	MaxTokens int    // reply length cap
}

// demoPaths are the files a demo run writes in its work directory.
type demoPaths struct {
	PublicKey, PrivateKey, Bundle, ModelDir, Htpasswd, AuditLog string
}

func newDemoPaths(dir string) demoPaths {
	return demoPaths{
		PublicKey:  filepath.Join(dir, "demo.pub"),
		PrivateKey: filepath.Join(dir, "demo.key"),
		Bundle:     filepath.Join(dir, "model.tar.zst"),
		ModelDir:   filepath.Join(dir, "model"),
		Htpasswd:   filepath.Join(dir, "htpasswd"),
		AuditLog:   filepath.Join(dir, "audit.log"),
	}
}

// runDemo runs the four steps and serves until ctx ends. It prints the
// banner (URL and credentials) to out, progress to errOut, and calls
// ready, if set, with the page's URL once the server accepts connections.
func runDemo(ctx context.Context, o demoOptions, out, errOut io.Writer, ready func(url string)) error {
	log := progress.Logger()
	model, err := findDemoModel(o.Model)
	if err != nil {
		return err
	}
	if o.Listen != "" {
		if err := requireLoopback(o.Listen); err != nil {
			return err
		}
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "airlock-demo-"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	} else if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	p := newDemoPaths(o.Dir)

	// 1. Key pair.
	log.Info("demo: make a signing key", "public_key", p.PublicKey)
	pubFile, privFile, err := signing.GenerateKey(nil)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := writeFileAtomic(p.PrivateKey, privFile, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(p.PublicKey, pubFile, 0o644); err != nil {
		return err
	}
	priv, err := signing.ParsePrivateKey(privFile, nil)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	pub, err := signing.ParsePublicKey(pubFile)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	// 2. Bundle from a local source.
	log.Info("demo: bundle the model", "model", model, "bundle", p.Bundle)
	snap, err := local.Dir{Root: model}.Resolve(ctx)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := bundle.WriteFile(ctx, p.Bundle, snap, bundle.Options{Signer: &priv, Progress: errOut}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	// 3. Verify and extract.
	log.Info("demo: verify and extract the bundle", "dir", p.ModelDir)
	m, err := verify.Extract(ctx, p.Bundle, pub, p.ModelDir, verify.Options{Force: true, Progress: errOut})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	manifestBytes, err := os.ReadFile(filepath.Join(p.ModelDir, filepath.FromSlash(manifests.ManifestPath)))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	sum := sha256.Sum256(manifestBytes)

	// 4. Serve.
	password := o.Password
	if password == "" {
		if password, err = randomPassword(); err != nil {
			return err
		}
	}
	if err := auth.SetUser(p.Htpasswd, o.User, password); err != nil {
		return fmt.Errorf("demo: htpasswd: %w", err)
	}
	loaded, err := runtime.Load(p.ModelDir, runtime.LoadOptions{Progress: errOut, Name: m.Name})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer loaded.Close()
	srv, err := server.New(server.Config{
		Engine:       loaded,
		Model:        server.ModelInfo{Name: m.Name, ManifestSHA256: hex.EncodeToString(sum[:]), Created: m.CreatedAt},
		HtpasswdPath: p.Htpasswd,
		AuditLogPath: p.AuditLog,
		Limits:       server.Limits{MaxTokens: o.MaxTokens},
		Logger:       log,
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	ln, err := listenDemo(o.Listen)
	if err != nil {
		_ = srv.Close()
		return err
	}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(out, `
airlock demo: serving %s, installed from a signed bundle and verified

  open      %s
  user      %s
  password  %s

  try       curl -u %s:PASSWORD -H 'Content-Type: application/json' \
              -d '{"text":"#EMOTION#这个产品很好用"}' %sapi/infer
  files     %s
  audit     airlock audit verify %s

The password is shown only this once. Press Ctrl-C to stop.
`, m.Name, url, o.User, password, o.User, url, o.Dir, p.AuditLog)
	if ready != nil {
		ready(url)
	}
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("demo: %w", err)
	}
	log.Info("demo: stopped; the work directory is kept", "dir", o.Dir)
	return nil
}

// findDemoModel returns the model directory to bundle: the one given, or
// the built-in test model found in the working directory or a parent (so
// `go run ./cmd/airlock demo` works anywhere in the source tree).
func findDemoModel(given string) (string, error) {
	if given != "" {
		if _, err := os.Stat(filepath.Join(given, "config.json")); err != nil {
			return "", usagef("demo: --model %s: not a model directory (no config.json)", given)
		}
		return given, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	for {
		cand := filepath.Join(dir, filepath.FromSlash(demoModelDir))
		if _, err := os.Stat(filepath.Join(cand, "config.json")); err == nil {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", usagef("demo: the built-in test model (%s) is not here or in a parent directory: "+
				"run the demo inside the airlock source tree, or give --model DIR", demoModelDir)
		}
		dir = parent
	}
}

// requireLoopback refuses addresses other than loopback: the demo serves
// plain HTTP with a throw-away key and must not be reachable from outside.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("demo: --listen %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return usagef("demo: --listen %q: the demo only serves on loopback (127.0.0.1); use airlock serve for anything else", addr)
	}
	return nil
}

// listenDemo listens on addr, or when addr is empty on 127.0.0.1:8080 or
// the first free port after it.
func listenDemo(addr string) (net.Listener, error) {
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		return ln, nil
	}
	var firstErr error
	for port := 8080; port < 8100; port++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			return ln, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("demo: no free port in 127.0.0.1:8080-8099 (%v); give --listen", firstErr)
}

// randomPassword returns 128 random bits as 22 URL-safe characters.
func randomPassword() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("demo: password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("demo: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("demo: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("demo: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
