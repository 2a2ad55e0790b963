package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/runtime"
	"github.com/airlock-dev/airlock/server"
	"github.com/airlock-dev/airlock/verify"
)

func init() {
	register(&cli.Command{
		Name:      "serve",
		Usage:     "serve a verified model directory: OpenAI-compatible API and chat page, with auth and an audit log",
		ArgsUsage: "DIR",
		Description: "DIR is a directory installed by `airlock verify`. At start the signed manifest is checked\n" +
			"against --pubkey (signature and file sizes; every sha256 with --verify-hashes) and a\n" +
			"modified directory is refused. Every flag can also be set by its environment variable.\n" +
			"SIGHUP reloads the htpasswd and API key files (they are also reloaded when they change);\n" +
			"SIGTERM or SIGINT shut down gracefully.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "pubkey", Usage: "trusted minisign public key file the manifest must verify against", EnvVars: []string{"AIRLOCK_PUBKEY"}},
			&cli.BoolFlag{Name: "verify-hashes", Usage: "re-hash every file at start (slower; default checks sizes)", EnvVars: []string{"AIRLOCK_VERIFY_HASHES"}},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "address to listen on", EnvVars: []string{"AIRLOCK_LISTEN"}},
			&cli.StringFlag{Name: "tls-cert", Usage: "TLS certificate file (PEM)", EnvVars: []string{"AIRLOCK_TLS_CERT"}},
			&cli.StringFlag{Name: "tls-key", Usage: "TLS private key file (PEM)", EnvVars: []string{"AIRLOCK_TLS_KEY"}},
			&cli.StringFlag{Name: "htpasswd", Usage: "htpasswd file with bcrypt entries for basic auth", EnvVars: []string{"AIRLOCK_HTPASSWD"}},
			&cli.StringFlag{Name: "api-keys", Usage: "API key file (airlock apikey create) for Authorization: Bearer", EnvVars: []string{"AIRLOCK_API_KEYS"}},
			&cli.BoolFlag{Name: "no-auth", Usage: "allow serving without authentication on a non-loopback address", EnvVars: []string{"AIRLOCK_NO_AUTH"}},
			&cli.BoolFlag{Name: "insecure-plain-http", Usage: "allow credentials over plain HTTP on a non-loopback address", EnvVars: []string{"AIRLOCK_INSECURE_PLAIN_HTTP"}},
			&cli.StringFlag{Name: "audit-log", Usage: "audit log file (required; rotated files sit beside it)", EnvVars: []string{"AIRLOCK_AUDIT_LOG"}},
			&cli.StringFlag{Name: "audit-content", Value: "full", Usage: "prompt and response text in audit records: full, hash or none", EnvVars: []string{"AIRLOCK_AUDIT_CONTENT"}},
			&cli.Int64Flag{Name: "audit-max-bytes", Value: server.DefaultAuditMaxBytes, Usage: "rotate the audit log at this size (0: never)", EnvVars: []string{"AIRLOCK_AUDIT_MAX_BYTES"}},
			&cli.IntFlag{Name: "concurrency", Value: server.DefaultConcurrency, Usage: "generations run at once", EnvVars: []string{"AIRLOCK_CONCURRENCY"}},
			&cli.IntFlag{Name: "queue", Value: server.DefaultQueue, Usage: "generation requests that may wait for a slot (more get 429)", EnvVars: []string{"AIRLOCK_QUEUE"}},
			&cli.Int64Flag{Name: "max-body-bytes", Value: server.DefaultMaxBodyBytes, Usage: "request body limit", EnvVars: []string{"AIRLOCK_MAX_BODY_BYTES"}},
			&cli.IntFlag{Name: "max-prompt-tokens", Value: server.DefaultMaxPromptTokens, Usage: "rendered prompt limit in tokens", EnvVars: []string{"AIRLOCK_MAX_PROMPT_TOKENS"}},
			&cli.IntFlag{Name: "max-tokens", Value: server.DefaultMaxTokens, Usage: "max_tokens ceiling and default", EnvVars: []string{"AIRLOCK_MAX_TOKENS"}},
			&cli.DurationFlag{Name: "request-timeout", Value: server.DefaultRequestTimeout, Usage: "longest generation", EnvVars: []string{"AIRLOCK_REQUEST_TIMEOUT"}},
			&cli.DurationFlag{Name: "shutdown-grace", Value: server.DefaultShutdownGrace, Usage: "time in-flight requests get to finish on shutdown", EnvVars: []string{"AIRLOCK_SHUTDOWN_GRACE"}},
			&cli.StringFlag{Name: "model-name", Usage: "model id clients use (default: the manifest's name)", EnvVars: []string{"AIRLOCK_MODEL_NAME"}},
			&cli.BoolFlag{Name: "heap", Usage: "read the weights into memory instead of memory-mapping them", EnvVars: []string{"AIRLOCK_HEAP_WEIGHTS"}},
			threadsFlag,
		},
		Action: runServe,
	})
}

// listenPolicy decides whether the listen address, auth and TLS settings
// are acceptable. It returns whether the address is loopback.
func listenPolicy(listen string, haveAuth, tls, noAuth, plainHTTP bool) (loopback bool, err error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false, usagef("serve: --listen %q: %v", listen, err)
	}
	loopback = host == "localhost"
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		loopback = true
	}
	if loopback {
		return true, nil
	}
	if !haveAuth && !noAuth {
		return false, usagef("serve: refusing to serve %s without authentication: give --htpasswd and/or --api-keys, or --no-auth to accept the risk", listen)
	}
	if haveAuth && !tls && !plainHTTP {
		return false, usagef("serve: refusing to accept credentials over plain HTTP on %s: give --tls-cert and --tls-key, or --insecure-plain-http to accept the risk", listen)
	}
	return false, nil
}

func runServe(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("serve: want exactly one DIR (a directory installed by airlock verify)")
	}
	dir := c.Args().First()
	log := progress.Logger()
	if c.String("pubkey") == "" {
		return usagef("serve: --pubkey is required (the trusted key the manifest must verify against)")
	}
	if c.String("audit-log") == "" {
		return usagef("serve: --audit-log is required")
	}
	mode, err := audit.ParseContentMode(c.String("audit-content"))
	if err != nil {
		return usagef("serve: --audit-content: %v", err)
	}
	if (c.String("tls-cert") == "") != (c.String("tls-key") == "") {
		return usagef("serve: give both --tls-cert and --tls-key")
	}
	haveAuth := c.String("htpasswd") != "" || c.String("api-keys") != ""
	loopback, err := listenPolicy(c.String("listen"), haveAuth, c.String("tls-cert") != "", c.Bool("no-auth"), c.Bool("insecure-plain-http"))
	if err != nil {
		return err
	}
	if !haveAuth {
		log.Warn("serving without authentication", "listen", c.String("listen"), "loopback", loopback)
	}
	applyThreads(c)

	pub, err := signing.LoadPublicKey(c.String("pubkey"))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	rep, err := verify.CheckDir(dir, pub, verify.DirOptions{FullHashes: c.Bool("verify-hashes"), Progress: os.Stderr})
	if err != nil {
		return fmt.Errorf("serve: refusing to serve %s: %w", dir, err)
	}
	manifestBytes, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(manifests.ManifestPath)))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	sum := sha256.Sum256(manifestBytes)
	manifestSHA := hex.EncodeToString(sum[:])
	log.Info("model directory verified", "dir", dir, "name", rep.Name, "files", rep.Files,
		"full_hashes", rep.FullHashes, "signer_key", rep.SignerKey, "manifest_sha256", manifestSHA)

	name := c.String("model-name")
	if name == "" {
		name = rep.Name
	}
	model, err := runtime.Load(dir, runtime.LoadOptions{Heap: c.Bool("heap"), Progress: os.Stderr, Name: name})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer model.Close()

	srv, err := server.New(server.Config{
		Engine:        model,
		Model:         server.ModelInfo{Name: name, ManifestSHA256: manifestSHA, Created: rep.Manifest.CreatedAt},
		HtpasswdPath:  c.String("htpasswd"),
		APIKeysPath:   c.String("api-keys"),
		NoAuth:        !haveAuth,
		AuditLogPath:  c.String("audit-log"),
		AuditContent:  mode,
		AuditMaxBytes: auditMaxBytes(c.Int64("audit-max-bytes")),
		Concurrency:   c.Int("concurrency"),
		Queue:         queueFlag(c.Int("queue")),
		Limits: server.Limits{
			MaxBodyBytes:    c.Int64("max-body-bytes"),
			MaxPromptTokens: c.Int("max-prompt-tokens"),
			MaxTokens:       c.Int("max-tokens"),
			RequestTimeout:  c.Duration("request-timeout"),
		},
		TLSCertFile:   c.String("tls-cert"),
		TLSKeyFile:    c.String("tls-key"),
		ShutdownGrace: c.Duration("shutdown-grace"),
		Logger:        log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("serve: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if err := srv.ReloadAuth(); err != nil {
				log.Error("SIGHUP: reload credentials; keeping the previous ones", "error", err.Error())
			} else {
				log.Info("SIGHUP: credentials reloaded")
			}
		}
	}()
	start := time.Now()
	err = srv.Serve(ctx, ln)
	log.Info("stopped", "uptime_s", int(time.Since(start).Seconds()))
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// auditMaxBytes maps the flag's 0 ("never") to the Config's "disabled".
func auditMaxBytes(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// queueFlag maps the flag's 0 ("no waiting") to the Config's "no queue".
func queueFlag(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
