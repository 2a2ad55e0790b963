package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/auth"
)

// statusWriter records the status code and whether a body was started.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.status, w.written = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestState is what the middleware knows about a request; the audit
// record is written from it exactly once.
type requestState struct {
	s        *Server
	r        *http.Request
	w        *statusWriter
	route    string
	id       string
	start    time.Time
	identity auth.Identity
	details  *audit.Details

	once sync.Once
	err  error
}

type stateKey struct{}

// commitAudit makes the request's audit record durable. Handlers call it
// just before the last bytes of their response (so a client never sees a
// complete response whose record could still be lost); the middleware
// calls it after the handler for everything else. Only the first call
// writes. status overrides the recorded status when non-zero.
func commitAudit(ctx context.Context, status int) error {
	st, ok := ctx.Value(stateKey{}).(*requestState)
	if !ok {
		return nil
	}
	return st.commit(status)
}

func (st *requestState) commit(status int) error {
	st.once.Do(func() {
		if status == 0 {
			status = st.w.status
			if !st.w.written {
				status = http.StatusOK
			}
		}
		rec := &audit.Record{
			Time:       st.start.UTC(),
			RequestID:  st.id,
			User:       st.identity.User,
			AuthMethod: st.identity.Method,
			Client:     st.r.RemoteAddr,
			Method:     st.r.Method,
			Route:      st.r.URL.Path,
			Status:     status,
			LatencyMS:  float64(time.Since(st.start).Microseconds()) / 1000,
		}
		rec.FromDetails(st.details, st.s.cfg.AuditContent)
		st.err = st.s.audit.Append(rec)
		if st.err != nil {
			st.s.metrics.auditErrors.Inc()
			st.s.cfg.Logger.Error("audit record not written", "request_id", st.id, "error", st.err.Error())
		} else {
			st.s.metrics.auditRecords.Inc()
		}
	})
	return st.err
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// protect wraps h with request ids, metrics, the audit record and
// authentication. route is the metrics label.
func (s *Server) protect(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		sw := &statusWriter{ResponseWriter: w}
		st := &requestState{s: s, r: r, w: sw, route: route, id: newRequestID(), start: time.Now(),
			details: &audit.Details{}}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stopAfter := context.AfterFunc(s.stopCtx, cancel)
		defer stopAfter()
		ctx = audit.WithDetails(ctx, st.details)
		ctx = context.WithValue(ctx, stateKey{}, st)
		r = r.WithContext(ctx)
		st.r = r
		sw.Header().Set("X-Request-Id", st.id)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					_ = st.commit(0)
					panic(p)
				}
				s.cfg.Logger.Error("handler panic", "request_id", st.id, "route", route, "panic", p)
				if !sw.written {
					writeError(sw, r, http.StatusInternalServerError, errServer, "", "", "internal error")
				}
			}
			status := sw.status
			if !sw.written {
				status = http.StatusOK
			}
			_ = st.commit(0)
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			s.metrics.latency.WithLabelValues(route).Observe(time.Since(st.start).Seconds())
		}()
		if s.draining.Load() {
			sw.Header().Set("Connection", "close")
			writeError(sw, r, http.StatusServiceUnavailable, errServer, "shutting_down", "", "the server is shutting down")
			return
		}
		if s.auth != nil {
			id, err := s.auth.Authenticate(r)
			if err != nil {
				s.authFailed(sw, r, st, err)
				return
			}
			st.identity = id
		} else {
			st.identity = auth.Identity{Method: "none"}
		}
		h.ServeHTTP(sw, r)
	})
}

func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, st *requestState, err error) {
	st.identity.Method = "failed"
	if user, _, ok := r.BasicAuth(); ok {
		st.identity.User = user // the claimed name, for the auditor
	}
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		s.metrics.authFailures.WithLabelValues("throttled").Inc()
		writeRetryAfter(w, r, te.RetryAfter, "too_many_failed_logins", te.Error())
	case errors.Is(err, auth.ErrNoCredentials):
		s.metrics.authFailures.WithLabelValues("missing").Inc()
		w.Header().Set("WWW-Authenticate", `Basic realm="airlock", charset="UTF-8"`)
		writeError(w, r, http.StatusUnauthorized, errAuthentication, "missing_credentials", "",
			"authentication required: HTTP basic auth or an API key as Authorization: Bearer")
	default:
		s.metrics.authFailures.WithLabelValues("invalid").Inc()
		w.Header().Set("WWW-Authenticate", `Basic realm="airlock", charset="UTF-8"`)
		writeError(w, r, http.StatusUnauthorized, errAuthentication, "invalid_api_key", "", "invalid credentials")
	}
}
