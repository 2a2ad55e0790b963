package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/auth"
)

// OpenAI error types used by airlock.
const (
	errInvalidRequest = "invalid_request_error"
	errAuthentication = "authentication_error"
	errRateLimit      = "rate_limit_error"
	errServer         = "server_error"
	errTimeout        = "timeout_error"
)

// apiError is OpenAI's error body: {"error":{"message","type","param","code"}}.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type errorBody struct {
	Error apiError `json:"error"`
}

func newAPIError(typ, code, param, msg string) apiError {
	e := apiError{Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	if param != "" {
		e.Param = &param
	}
	return e
}

// writeError sends an OpenAI-shaped error and notes it for the audit record.
func writeError(w http.ResponseWriter, r *http.Request, status int, typ, code, param, msg string) {
	audit.DetailsFrom(r.Context()).Error = msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{newAPIError(typ, code, param, msg)})
}

// writeRetryAfter sends a 429 with a Retry-After header.
func writeRetryAfter(w http.ResponseWriter, r *http.Request, after time.Duration, code, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(auth.RetryAfterSeconds(after)))
	writeError(w, r, http.StatusTooManyRequests, errRateLimit, code, "", msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
