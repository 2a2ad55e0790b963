// Package infer serves POST /api/infer, the All-in-One endpoint other
// systems call: {"text": "...", "mode": "emotion"|"chat"} answers with an
// emotion label (正面 or 负面, decided by constrained decoding over exactly
// those two label sequences) or a chat reply from the same model.
package infer

import (
	"context"
	"errors"
	"fmt"
	"github.com/airlock-dev/airlock/internal/apierror"
	"mime"
	"net/http"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/runtime"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxBodyBytes  = 64 << 10 // request body
	DefaultMaxTextBytes  = 32 << 10 // text after JSON decoding
	DefaultMaxChatTokens = 512      // reply length cap in chat mode
	// DefaultMaxPromptTokens bounds the rendered prompt: prefill time and
	// KV-cache memory grow with it, so one request must not claim the
	// whole context of a large model.
	DefaultMaxPromptTokens = 4096
)

// Options tunes the handler. The zero value uses the defaults.
type Options struct {
	MaxBodyBytes  int64 // larger bodies get 413
	MaxTextBytes  int   // longer texts get 413
	MaxChatTokens int   // cap (and default) of max_tokens in chat mode
	// MaxPromptTokens bounds the rendered prompt in tokens (400 beyond);
	// the model's context length bounds it too.
	MaxPromptTokens int
	// ModelName and ManifestSHA256 go into each audit record (defaults:
	// the engine's name, and none). Values already set by the serving
	// middleware are kept.
	ModelName      string
	ManifestSHA256 string
}

// Response is the body of a successful POST /api/infer. Exactly one of
// EmotionLabel and ChatResponse is set; the other is JSON null.
type Response struct {
	EmotionLabel    *string  `json:"emotion_label"`
	ChatResponse    *string  `json:"chat_response"`
	InferenceTimeMS int64    `json:"inference_time_ms"`
	Confidence      *float64 `json:"confidence,omitempty"`
}

// Handler returns the POST /api/infer handler with default Options.
func Handler(engine runtime.Engine) http.Handler { return New(engine, Options{}) }

// New returns the POST /api/infer handler for engine.
func New(engine runtime.Engine, opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxTextBytes <= 0 {
		opts.MaxTextBytes = DefaultMaxTextBytes
	}
	if opts.MaxChatTokens <= 0 {
		opts.MaxChatTokens = DefaultMaxChatTokens
	}
	if opts.MaxPromptTokens <= 0 {
		opts.MaxPromptTokens = DefaultMaxPromptTokens
	}
	if opts.ModelName == "" {
		opts.ModelName = engine.Info().Name
	}
	return &handler{engine: engine, opts: opts}
}

type handler struct {
	engine runtime.Engine
	opts   Options
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	details := audit.DetailsFrom(r.Context())
	if details.Model == "" {
		details.Model = h.opts.ModelName
	}
	if details.ManifestSHA256 == "" {
		details.ManifestSHA256 = h.opts.ManifestSHA256
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, details, &requestError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			msg: "use POST"})
		return
	}
	// A JSON content type keeps cross-site HTML forms (which cannot send
	// one without a CORS preflight) from reaching the model with the
	// browser's stored credentials.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, details, &requestError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
			msg: "Content-Type must be application/json"})
		return
	}
	req, err := parseRequest(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		writeError(w, details, err)
		return
	}
	if len(req.Text) > h.opts.MaxTextBytes {
		writeError(w, details, &requestError{status: http.StatusRequestEntityTooLarge, param: "text",
			code: "text_too_long", msg: fmt.Sprintf("text is %d bytes; the limit is %d", len(req.Text), h.opts.MaxTextBytes)})
		return
	}
	details.Params = req.params()
	start := time.Now()
	var resp Response
	switch req.Mode {
	case ModeEmotion:
		err = h.emotion(r.Context(), req, details, &resp)
	default:
		err = h.chat(r.Context(), req, details, &resp)
	}
	if err != nil {
		writeError(w, details, h.classifyError(r, err))
		return
	}
	resp.InferenceTimeMS = time.Since(start).Milliseconds()
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) emotion(ctx context.Context, req Request, details *audit.Details, resp *Response) error {
	c, err := classify(ctx, h.engine, req.Text, h.opts.MaxPromptTokens)
	details.Prompt = c.Prompt
	details.PromptTokens = c.PromptIDs
	if err != nil {
		return err
	}
	details.Response = c.Label
	details.CompletionTokens = c.LabelIDs
	details.FinishReason = string(runtime.FinishStop)
	label, conf := c.Label, c.Confidence
	resp.EmotionLabel, resp.Confidence = &label, &conf
	return nil
}

func (h *handler) chat(ctx context.Context, req Request, details *audit.Details, resp *Response) error {
	prompt, err := h.engine.RenderChat([]runtime.Message{{Role: "user", Content: req.Text}}, true)
	if err != nil {
		return fmt.Errorf("chat: render prompt: %w", err)
	}
	details.Prompt = prompt
	ids := h.engine.Encode(prompt)
	details.PromptTokens = len(ids)
	p := runtime.SampleParams{MaxTokens: h.opts.MaxChatTokens}
	if req.MaxTokens != nil {
		p.MaxTokens = min(*req.MaxTokens, h.opts.MaxChatTokens)
	}
	if len(ids) > h.opts.MaxPromptTokens {
		return fmt.Errorf("chat: %d prompt tokens, the limit is %d: %w", len(ids), h.opts.MaxPromptTokens, ErrContextTooLong)
	}
	if limit := h.engine.Info().ContextLength; limit > 0 {
		if len(ids) >= limit {
			return fmt.Errorf("chat: %d prompt tokens, context holds %d: %w", len(ids), limit, ErrContextTooLong)
		}
		p.MaxTokens = min(p.MaxTokens, limit-len(ids))
	}
	if req.Temperature != nil {
		p.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		p.TopP = *req.TopP
	}
	if req.Seed != nil {
		p.Seed = *req.Seed
	}
	res, err := h.engine.Generate(ctx, ids, p, func(runtime.TokenEvent) error { return nil })
	details.Response = res.Text
	details.CompletionTokens = res.CompletionTokens
	details.FinishReason = string(res.FinishReason)
	if err != nil {
		return fmt.Errorf("chat: generate: %w", err)
	}
	text := res.Text
	resp.ChatResponse = &text
	return nil
}

// classifyError maps an inference error to what the client sees. Internal
// failures are logged in full and reported without detail.
func (h *handler) classifyError(r *http.Request, err error) error {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, ErrContextTooLong):
		return &requestError{status: http.StatusBadRequest, param: "text", code: "context_length_exceeded",
			msg: "text is too long for the model (" + err.Error() + ")"}
	case errors.Is(err, runtime.ErrQueueFull):
		return &requestError{status: http.StatusTooManyRequests, code: "rate_limit_exceeded",
			msg: "the server is busy; retry shortly"}
	case r.Context().Err() != nil:
		return &requestError{status: 499, code: "client_closed_request", msg: "request cancelled by the client"}
	}
	progress.Logger().Error("infer failed", "path", r.URL.Path, "error", err.Error())
	return &requestError{status: http.StatusInternalServerError, code: "internal_error", msg: "inference failed"}
}

// params returns the request's settings for the audit record.
func (req Request) params() map[string]any {
	m := map[string]any{"mode": string(req.Mode)}
	if req.MaxTokens != nil {
		m["max_tokens"] = *req.MaxTokens
	}
	if req.Temperature != nil {
		m["temperature"] = *req.Temperature
	}
	if req.TopP != nil {
		m["top_p"] = *req.TopP
	}
	if req.Seed != nil {
		m["seed"] = *req.Seed
	}
	return m
}

func writeError(w http.ResponseWriter, details *audit.Details, err error) {
	var re *requestError
	if !errors.As(err, &re) {
		re = &requestError{status: http.StatusInternalServerError, code: "internal_error", msg: "inference failed"}
	}
	details.Error = re.msg
	if re.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	apierror.Write(w, re.status, apierror.New(apierror.TypeFor(re.status), re.code, re.param, re.msg))
}

func writeJSON(w http.ResponseWriter, status int, v any) { apierror.WriteJSON(w, status, v) }
