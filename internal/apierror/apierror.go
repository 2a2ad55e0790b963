// Package apierror writes errors in the OpenAI API's JSON shape,
// {"error":{"message","type","param","code"}}, which every airlock HTTP
// endpoint uses so that OpenAI SDKs and scripts see one error format.
package apierror

import (
	"encoding/json"
	"net/http"
)

// OpenAI error types used by airlock.
const (
	InvalidRequest = "invalid_request_error"
	Authentication = "authentication_error"
	RateLimit      = "rate_limit_error"
	Server         = "server_error"
	Timeout        = "timeout_error"
)

// Error is the inner object of an OpenAI error body. Param and Code are
// JSON null when empty.
type Error struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Body is an OpenAI error body.
type Body struct {
	Error Error `json:"error"`
}

// New returns an error body; empty code and param become null.
func New(typ, code, param, msg string) Body {
	e := Error{Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	if param != "" {
		e.Param = &param
	}
	return Body{e}
}

// TypeFor names the error type of an HTTP status the way the OpenAI API does.
func TypeFor(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return Authentication
	case status == http.StatusTooManyRequests:
		return RateLimit
	case status == http.StatusRequestTimeout:
		return Timeout
	case status >= 500:
		return Server
	default:
		return InvalidRequest
	}
}

// Write sends b with status as an uncacheable JSON response.
func Write(w http.ResponseWriter, status int, b Body) {
	WriteJSON(w, status, b)
}

// WriteJSON sends v with status as an uncacheable JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
