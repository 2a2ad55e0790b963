package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/auth"
)

// Server is a configured airlock HTTP server.
type Server struct {
	cfg     Config
	engine  *Admission
	auth    *auth.Authenticator // nil with NoAuth
	audit   *audit.Writer
	metrics *metrics
	handler http.Handler

	stopCtx  context.Context // cancelled to abort in-flight generations
	stop     context.CancelFunc
	draining atomic.Bool
	inflight atomic.Int64 // requests inside the middleware

	closeOnce sync.Once
	closeErr  error
}

// New checks cfg, loads the credential files and opens the audit log.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil {
		return nil, errors.New("server: no engine")
	}
	if cfg.AuditLogPath == "" {
		return nil, errors.New("server: no audit log path")
	}
	if !cfg.NoAuth && cfg.HtpasswdPath == "" && cfg.APIKeysPath == "" {
		return nil, errors.New("server: no htpasswd or API key file (authentication is required unless explicitly disabled)")
	}
	if cfg.AuditContent != "" {
		if _, err := audit.ParseContentMode(string(cfg.AuditContent)); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("server: TLS needs both a certificate and a key file")
	}
	cfg.applyDefaults()
	s := &Server{cfg: cfg}
	if !cfg.NoAuth {
		a := &auth.Authenticator{Throttle: cfg.Throttle}
		if cfg.HtpasswdPath != "" {
			users, err := auth.LoadHtpasswd(cfg.HtpasswdPath)
			if err != nil {
				return nil, fmt.Errorf("server: %w", err)
			}
			a.Users = users
		}
		if cfg.APIKeysPath != "" {
			keys, err := auth.LoadAPIKeys(cfg.APIKeysPath)
			if err != nil {
				return nil, fmt.Errorf("server: %w", err)
			}
			a.Keys = keys
		}
		s.auth = a
	}
	w, err := audit.Open(cfg.AuditLogPath, audit.Options{MaxBytes: cfg.AuditMaxBytes})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.audit = w
	s.engine = NewAdmission(cfg.Engine, cfg.Concurrency, cfg.Queue)
	s.metrics = newMetrics(s.engine)
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler (all routes and middleware).
func (s *Server) Handler() http.Handler { return s.handler }

// Engine returns the admission-controlled engine the server generates with.
func (s *Server) Engine() *Admission { return s.engine }

// AuditLog returns the server's audit log writer.
func (s *Server) AuditLog() *audit.Writer { return s.audit }

// ReloadAuth re-reads the htpasswd and API key files (on SIGHUP). On error
// the previous credentials stay in force.
func (s *Server) ReloadAuth() error {
	if s.auth == nil {
		return nil
	}
	return s.auth.Reload()
}

// Serve serves HTTP (HTTPS when TLS files are configured) on ln until ctx
// ends, then shuts down gracefully: it stops accepting, lets in-flight
// requests finish for ShutdownGrace, cancels the generations still running,
// waits for their handlers to write their audit records and closes the
// audit log. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	if s.cfg.ReloadInterval > 0 && s.auth != nil {
		go s.pollCredentials(ctx)
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if s.cfg.TLSCertFile != "" {
			err = hs.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		} else {
			err = hs.Serve(ln)
		}
		errc <- err
	}()
	log := s.cfg.Logger
	log.Info("serving", "addr", ln.Addr().String(), "tls", s.cfg.TLSCertFile != "", "model", s.cfg.Model.Name,
		"concurrency", s.cfg.Concurrency, "queue", s.cfg.Queue, "auth", s.auth != nil)
	var serveErr error
	select {
	case err := <-errc:
		serveErr = err // the listener failed
	case <-ctx.Done():
	}
	s.draining.Store(true)
	log.Info("shutting down", "grace", s.cfg.ShutdownGrace.String())
	graceCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	err := hs.Shutdown(graceCtx)
	cancel()
	if err != nil {
		log.Warn("grace period over; cancelling in-flight generations")
		s.stop()
		forceCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := hs.Shutdown(forceCtx); err != nil {
			_ = hs.Close()
		}
		cancel()
	}
	if closeErr := s.Close(); closeErr != nil && serveErr == nil {
		serveErr = closeErr
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// Close cancels in-flight generations, waits for their handlers to finish
// and closes the audit log. Serve calls it; call it yourself when using
// Handler directly.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.draining.Store(true)
		deadline := time.Now().Add(s.cfg.ShutdownGrace)
		for s.inflight.Load() > 0 {
			if time.Now().After(deadline) {
				s.stop()
			}
			time.Sleep(5 * time.Millisecond)
		}
		s.stop()
		seq, head := s.audit.Head()
		s.closeErr = s.audit.Close()
		s.cfg.Logger.Info("audit log closed", "path", s.audit.Path(), "last_seq", seq, "head", head)
	})
	return s.closeErr
}

func (s *Server) pollCredentials(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.auth.ReloadIfChanged(); err != nil {
				s.cfg.Logger.Error("reload credentials; keeping the previous ones", "error", err.Error())
			}
		}
	}
}
