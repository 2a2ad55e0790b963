// Package server is airlock's HTTP front end: the OpenAI-compatible chat
// API, health, readiness and Prometheus metrics, behind authentication,
// an audit record per request, request limits and admission control
// (a concurrency limit plus a bounded wait queue for generation).
//
// Use it as a library:
//
//	srv, err := server.New(server.Config{Engine: model, HtpasswdPath: "users", AuditLogPath: "audit.log"})
//	...
//	err = srv.Serve(ctx, listener) // returns after a graceful shutdown when ctx ends
package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/auth"
	"github.com/airlock-dev/airlock/runtime"
)

// Config configures a Server. Engine and AuditLogPath are required, and at
// least one of HtpasswdPath and APIKeysPath unless NoAuth is set.
type Config struct {
	// Engine generates text. The server wraps it with admission control.
	Engine runtime.Engine
	// Model names what is served; empty fields default from Engine.Info.
	Model ModelInfo

	// HtpasswdPath is an htpasswd file of bcrypt entries for basic auth.
	HtpasswdPath string
	// APIKeysPath is a file of hashed bearer keys (airlock apikey create).
	APIKeysPath string
	// NoAuth serves without authentication. Callers must only allow it on
	// loopback or on explicit operator request (--no-auth).
	NoAuth bool
	// Throttle overrides the failed-login throttle (default auth.NewThrottle).
	Throttle *auth.Throttle
	// ReloadInterval is how often the htpasswd and key files are checked
	// for changes (default 2 s; negative disables polling).
	ReloadInterval time.Duration

	// AuditLogPath is the audit log's active file (rotated files sit beside
	// it as PATH.1, PATH.2, ...).
	AuditLogPath string
	// AuditContent says how much prompt and response text records keep
	// (default audit.ContentFull).
	AuditContent audit.ContentMode
	// AuditMaxBytes rotates the audit log at this size (default 64 MiB;
	// negative disables rotation).
	AuditMaxBytes int64

	// Concurrency is how many generations run at once (default 1).
	Concurrency int
	// Queue is how many generation requests may wait for a slot (default 8);
	// beyond that requests get 429 with Retry-After.
	Queue int
	// Limits bound each request.
	Limits Limits

	// Routes adds handlers behind the same auth, audit and metrics
	// middleware, keyed by ServeMux pattern (for example "GET /" for the
	// web page or "POST /api/infer"). Each function receives the
	// admission-controlled engine.
	Routes map[string]func(engine runtime.Engine) http.Handler

	// TLSCertFile and TLSKeyFile, when both set, make Serve speak HTTPS.
	TLSCertFile, TLSKeyFile string
	// ShutdownGrace is how long Serve lets in-flight requests finish after
	// its context ends before cancelling their generations (default 30 s).
	ShutdownGrace time.Duration
	// Logger receives operational logs (default slog.Default). Secrets and
	// prompt text are never logged.
	Logger *slog.Logger
}

// ModelInfo names the served model.
type ModelInfo struct {
	Name           string    // the model id clients use ("model" in requests)
	ManifestSHA256 string    // sha256 of the verified bundle manifest
	Created        time.Time // shown as "created" in /v1/models
}

// Limits bound what one request may ask for. Zero fields take defaults.
type Limits struct {
	MaxBodyBytes    int64         // request body size (default 1 MiB) → 413
	MaxPromptTokens int           // rendered prompt tokens (default 4096) → 400
	MaxTokens       int           // max_tokens ceiling and default (default 512) → 400
	MaxMessages     int           // messages per request (default 256) → 400
	RequestTimeout  time.Duration // whole generation (default 5 min) → 408
}

// Defaults for Config and Limits.
const (
	DefaultConcurrency     = 1
	DefaultQueue           = 8
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxPromptTokens = 4096
	DefaultMaxTokens       = 512
	DefaultMaxMessages     = 256
	DefaultRequestTimeout  = 5 * time.Minute
	DefaultAuditMaxBytes   = 64 << 20
	DefaultShutdownGrace   = 30 * time.Second
	DefaultReloadInterval  = 2 * time.Second
)

func (c *Config) applyDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Queue < 0 {
		c.Queue = 0
	} else if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	l := &c.Limits
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxPromptTokens <= 0 {
		l.MaxPromptTokens = DefaultMaxPromptTokens
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultMaxTokens
	}
	if l.MaxMessages <= 0 {
		l.MaxMessages = DefaultMaxMessages
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = DefaultRequestTimeout
	}
	if c.AuditContent == "" {
		c.AuditContent = audit.ContentFull
	}
	if c.AuditMaxBytes == 0 {
		c.AuditMaxBytes = DefaultAuditMaxBytes
	} else if c.AuditMaxBytes < 0 {
		c.AuditMaxBytes = 0
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultReloadInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Throttle == nil {
		c.Throttle = auth.NewThrottle()
	}
	info := c.Engine.Info()
	if c.Model.Name == "" {
		c.Model.Name = info.Name
	}
	if c.Model.Created.IsZero() {
		c.Model.Created = time.Now()
	}
}
