package server

import (
	"github.com/airlock-dev/airlock/internal/apierror"
	"net/http"
	"strconv"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/auth"
)

// OpenAI error types used by airlock.
const (
	errInvalidRequest = apierror.InvalidRequest
	errAuthentication = apierror.Authentication
	errRateLimit      = apierror.RateLimit
	errServer         = apierror.Server
	errTimeout        = apierror.Timeout
)

// writeError sends an OpenAI-shaped error and notes it for the audit record.
func writeError(w http.ResponseWriter, r *http.Request, status int, typ, code, param, msg string) {
	audit.DetailsFrom(r.Context()).Error = msg
	apierror.Write(w, status, apierror.New(typ, code, param, msg))
}

// writeRetryAfter sends a 429 with a Retry-After header.
func writeRetryAfter(w http.ResponseWriter, r *http.Request, after time.Duration, code, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(auth.RetryAfterSeconds(after)))
	writeError(w, r, http.StatusTooManyRequests, errRateLimit, code, "", msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) { apierror.WriteJSON(w, status, v) }
