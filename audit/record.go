package audit

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	sha256 "github.com/minio/sha256-simd"
)

// FormatVersion is the record format written by this package ("v" field).
const FormatVersion = 1

// GenesisPrev is the "prev" value of the first record of a chain: 64 zeros.
var GenesisPrev = strings.Repeat("0", 64)

// ContentMode says how much of prompts and responses a record keeps.
type ContentMode string

// Content modes.
const (
	ContentFull ContentMode = "full" // prompt and response text
	ContentHash ContentMode = "hash" // their sha256 only
	ContentNone ContentMode = "none" // neither
)

// ParseContentMode parses "full", "hash" or "none".
func ParseContentMode(s string) (ContentMode, error) {
	switch m := ContentMode(s); m {
	case ContentFull, ContentHash, ContentNone:
		return m, nil
	}
	return "", fmt.Errorf("audit content mode %q: want full, hash or none", s)
}

// Record is one audit log line. The writer fills V, Seq and Prev; the JSON
// field order is the on-disk order (see docs/audit-log.md). Prev is last so a
// reader can see the chain link at the end of every line.
type Record struct {
	V              int            `json:"v"`
	Seq            uint64         `json:"seq"`
	Time           time.Time      `json:"time"`
	RequestID      string         `json:"request_id"`
	User           string         `json:"user"`       // user name, "key:<id>", or "" when unauthenticated
	AuthMethod     string         `json:"auth"`       // "basic", "bearer", "none" or "failed"
	Client         string         `json:"client"`     // remote address (host:port)
	Method         string         `json:"method"`     // HTTP method
	Route          string         `json:"route"`      // request path
	Status         int            `json:"status"`     // HTTP status sent
	LatencyMS      float64        `json:"latency_ms"` // from request start to the record's commit
	Model          string         `json:"model,omitempty"`
	ManifestSHA256 string         `json:"manifest_sha256,omitempty"`
	Params         map[string]any `json:"params,omitempty"`
	Prompt         *string        `json:"prompt,omitempty"`          // content mode full
	PromptSHA256   string         `json:"prompt_sha256,omitempty"`   // content mode hash
	Response       *string        `json:"response,omitempty"`        // content mode full
	ResponseSHA256 string         `json:"response_sha256,omitempty"` // content mode hash
	PromptTokens   int            `json:"prompt_tokens"`
	CompTokens     int            `json:"completion_tokens"`
	FinishReason   string         `json:"finish_reason,omitempty"`
	Error          string         `json:"error,omitempty"`
	Prev           string         `json:"prev"`
}

// SetContent stores prompt and response in r as mode asks.
func (r *Record) SetContent(mode ContentMode, prompt, response string) {
	r.Prompt, r.Response, r.PromptSHA256, r.ResponseSHA256 = nil, nil, "", ""
	switch mode {
	case ContentFull:
		p, q := prompt, response
		r.Prompt, r.Response = &p, &q
	case ContentHash:
		r.PromptSHA256 = hashHex([]byte(prompt))
		r.ResponseSHA256 = hashHex([]byte(response))
	}
}

// FromDetails copies a handler's Details into r, applying the content mode.
func (r *Record) FromDetails(d *Details, mode ContentMode) {
	r.Model = d.Model
	r.ManifestSHA256 = d.ManifestSHA256
	r.Params = d.Params
	r.PromptTokens = d.PromptTokens
	r.CompTokens = d.CompletionTokens
	r.FinishReason = d.FinishReason
	r.Error = d.Error
	if d.Prompt != "" || d.Response != "" {
		r.SetContent(mode, d.Prompt, d.Response)
	}
}

// LineHash returns the chain hash of one record line: the lowercase hex
// sha256 of its bytes without the trailing newline.
func LineHash(line []byte) string { return hashHex(line) }

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
