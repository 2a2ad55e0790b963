package infer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Mode selects what POST /api/infer does with the text.
type Mode string

// Modes of POST /api/infer.
const (
	ModeChat    Mode = "chat"    // generate a reply to the text
	ModeEmotion Mode = "emotion" // classify the text as 正面 (positive) or 负面 (negative)
)

// Text prefixes that select a mode, as in the original All-in-One service.
// The prefix is removed before the text reaches the model.
const (
	PrefixEmotion = "#EMOTION#"
	PrefixChat    = "#CHAT#"
)

// Request is the body of POST /api/infer. Only Text is required. The
// sampling fields apply to chat mode; emotion mode ignores them because
// it does not generate.
type Request struct {
	Text        string   `json:"text"`
	Mode        Mode     `json:"mode,omitempty"`
	MaxTokens   *int     `json:"max_tokens,omitempty"`
	Temperature *float32 `json:"temperature,omitempty"`
	TopP        *float32 `json:"top_p,omitempty"`
	Seed        *uint64  `json:"seed,omitempty"`
}

// requestError is a client error with the parameter it concerns.
type requestError struct {
	status int
	param  string
	code   string
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func tooLarge(limit int64) *requestError {
	return &requestError{status: http.StatusRequestEntityTooLarge, param: "text", code: "request_too_large",
		msg: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

func badRequest(param, code, format string, args ...any) *requestError {
	return &requestError{status: 400, param: param, code: code, msg: fmt.Sprintf(format, args...)}
}

// parseRequest decodes a request body (limited by the caller with
// http.MaxBytesReader) and resolves the mode: the "mode" field,
// or a #EMOTION#/#CHAT# prefix of the text, which is stripped. A prefix
// that disagrees with an explicit mode is an error rather than a guess.
// With neither, the mode is chat. The returned text is the model input.
func parseRequest(body io.Reader) (Request, error) {
	var req Request
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, tooLarge(tooBig.Limit)
		}
		return req, badRequest("", "invalid_json", "request body is not a valid JSON object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, tooLarge(tooBig.Limit)
		}
		return req, badRequest("", "invalid_json", "request body must hold exactly one JSON object")
	}
	if !utf8.ValidString(req.Text) {
		return req, badRequest("text", "invalid_text", "text is not valid UTF-8")
	}
	text, prefixMode := splitPrefix(req.Text)
	switch req.Mode {
	case "":
		req.Mode = prefixMode
		if req.Mode == "" {
			req.Mode = ModeChat
		}
	case ModeChat, ModeEmotion:
		if prefixMode != "" && prefixMode != req.Mode {
			return req, badRequest("mode", "conflicting_mode",
				"mode %q conflicts with the text's %s prefix", req.Mode, prefixOf(prefixMode))
		}
	default:
		return req, badRequest("mode", "invalid_mode", "mode must be %q or %q, not %q", ModeEmotion, ModeChat, req.Mode)
	}
	req.Text = text
	if strings.TrimSpace(req.Text) == "" {
		return req, badRequest("text", "empty_text", "text is empty")
	}
	if req.MaxTokens != nil && *req.MaxTokens < 1 {
		return req, badRequest("max_tokens", "invalid_value", "max_tokens must be at least 1")
	}
	if req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 2 || *req.Temperature != *req.Temperature) {
		return req, badRequest("temperature", "invalid_value", "temperature must be between 0 and 2")
	}
	if req.TopP != nil && (*req.TopP <= 0 || *req.TopP > 1 || *req.TopP != *req.TopP) {
		return req, badRequest("top_p", "invalid_value", "top_p must be in (0, 1]")
	}
	return req, nil
}

// splitPrefix removes a leading #EMOTION# or #CHAT# (ASCII case-insensitive,
// after leading white space) and reports the mode it selects.
func splitPrefix(text string) (string, Mode) {
	trimmed := strings.TrimLeft(text, " \t\r\n")
	for _, p := range []struct {
		prefix string
		mode   Mode
	}{{PrefixEmotion, ModeEmotion}, {PrefixChat, ModeChat}} {
		if len(trimmed) >= len(p.prefix) && strings.EqualFold(trimmed[:len(p.prefix)], p.prefix) {
			return strings.TrimLeft(trimmed[len(p.prefix):], " \t\r\n"), p.mode
		}
	}
	return text, ""
}

func prefixOf(m Mode) string {
	if m == ModeEmotion {
		return PrefixEmotion
	}
	return PrefixChat
}

// defuseControlTokens breaks up chat-template control markers such as
// <|im_start|> and <|im_end|> in untrusted text, so classified text cannot
// close its own turn and forge a system or assistant turn. The visible
// characters are kept; a zero-width space separates "<" from "|".
func defuseControlTokens(text string) string {
	if !strings.Contains(text, "<|") && !strings.Contains(text, "|>") {
		return text
	}
	var b bytes.Buffer
	b.Grow(len(text) + 16)
	for i := 0; i < len(text); i++ {
		c := text[i]
		b.WriteByte(c)
		if (c == '<' && i+1 < len(text) && text[i+1] == '|') ||
			(c == '|' && i+1 < len(text) && text[i+1] == '>') {
			b.WriteString("\u200b")
		}
	}
	return b.String()
}
