package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/airlock-dev/airlock/internal/apierror"
	"io"
	"net/http"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/runtime"
)

// StatusClientClosed is the status audit records give a request whose
// client disconnected before the response was complete.
const StatusClientClosed = 499

// streamWriteTimeout bounds one write to a streaming client; a client that
// stops reading loses its generation slot instead of holding it.
const streamWriteTimeout = 30 * time.Second

// chatRequest is the subset of OpenAI's chat completion request airlock
// understands. Fields it cannot honour are rejected, not ignored.
type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	RepetitionPenalty   *float64        `json:"repetition_penalty"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	Seed                *int64          `json:"seed"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N                *int            `json:"n"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Logprobs         *bool           `json:"logprobs"`
	Tools            json.RawMessage `json:"tools"`
	ResponseFormat   *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type responseMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type completionChoice struct {
	Index        int             `json:"index"`
	Message      responseMessage `json:"message"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type chatCompletion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []completionChoice `json:"choices"`
	Usage             usage              `json:"usage"`
}

type chunkDelta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	Usage             *usage        `json:"usage,omitempty"`
}

// badRequest is a validation failure: message and the offending parameter.
type badRequest struct {
	param, code, msg string
}

func (e *badRequest) Error() string { return e.msg }

func invalid(param, format string, args ...any) *badRequest {
	return &badRequest{param: param, msg: fmt.Sprintf(format, args...)}
}

// parsedChat is a validated request ready for the engine.
type parsedChat struct {
	messages     []runtime.Message
	params       runtime.SampleParams
	maxTokensSet bool
	stream       bool
	includeUsage bool
}

func (s *Server) parseChat(req *chatRequest) (*parsedChat, *badRequest) {
	lim := s.cfg.Limits
	if req.Model != "" && req.Model != s.cfg.Model.Name {
		return nil, &badRequest{param: "model", code: "model_not_found",
			msg: fmt.Sprintf("the model %q does not exist; this server serves %q", req.Model, s.cfg.Model.Name)}
	}
	if len(req.Messages) == 0 {
		return nil, invalid("messages", "messages must be a non-empty array")
	}
	if len(req.Messages) > lim.MaxMessages {
		return nil, invalid("messages", "too many messages: %d, the limit is %d", len(req.Messages), lim.MaxMessages)
	}
	p := &parsedChat{stream: req.Stream}
	for i, m := range req.Messages {
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		if role != "system" && role != "user" && role != "assistant" {
			return nil, invalid(fmt.Sprintf("messages[%d].role", i), "unsupported role %q: use system, user or assistant", m.Role)
		}
		text, err := messageText(m.Content)
		if err != nil {
			return nil, invalid(fmt.Sprintf("messages[%d].content", i), "%v", err)
		}
		p.messages = append(p.messages, runtime.Message{Role: role, Content: text})
	}
	if req.N != nil && *req.N != 1 {
		return nil, invalid("n", "only n=1 is supported")
	}
	if req.PresencePenalty != nil && *req.PresencePenalty != 0 {
		return nil, invalid("presence_penalty", "presence_penalty is not supported; use repetition_penalty")
	}
	if req.FrequencyPenalty != nil && *req.FrequencyPenalty != 0 {
		return nil, invalid("frequency_penalty", "frequency_penalty is not supported; use repetition_penalty")
	}
	if req.Logprobs != nil && *req.Logprobs {
		return nil, invalid("logprobs", "logprobs are not supported")
	}
	if len(req.Tools) > 0 && !bytes.Equal(bytes.TrimSpace(req.Tools), []byte("null")) && !bytes.Equal(bytes.TrimSpace(req.Tools), []byte("[]")) {
		return nil, invalid("tools", "tools are not supported")
	}
	if req.ResponseFormat != nil && req.ResponseFormat.Type != "" && req.ResponseFormat.Type != "text" {
		return nil, invalid("response_format", "only the text response format is supported")
	}
	sp := runtime.SampleParams{Temperature: 1, TopP: 1}
	if req.Temperature != nil {
		if *req.Temperature < 0 || *req.Temperature > 2 {
			return nil, invalid("temperature", "temperature must be between 0 and 2")
		}
		sp.Temperature = float32(*req.Temperature)
	}
	if req.TopP != nil {
		if *req.TopP <= 0 || *req.TopP > 1 {
			return nil, invalid("top_p", "top_p must be greater than 0 and at most 1")
		}
		sp.TopP = float32(*req.TopP)
	}
	if req.TopK != nil {
		if *req.TopK < 0 {
			return nil, invalid("top_k", "top_k must not be negative")
		}
		sp.TopK = *req.TopK
	}
	if req.RepetitionPenalty != nil {
		if *req.RepetitionPenalty <= 0 || *req.RepetitionPenalty > 10 {
			return nil, invalid("repetition_penalty", "repetition_penalty must be greater than 0 and at most 10")
		}
		sp.RepetitionPenalty = float32(*req.RepetitionPenalty)
	}
	maxTokens, param := req.MaxTokens, "max_tokens"
	if req.MaxCompletionTokens != nil {
		maxTokens, param = req.MaxCompletionTokens, "max_completion_tokens"
	}
	sp.MaxTokens = lim.MaxTokens
	if maxTokens != nil {
		if *maxTokens < 1 {
			return nil, invalid(param, "%s must be at least 1", param)
		}
		if *maxTokens > lim.MaxTokens {
			return nil, &badRequest{param: param, code: "max_tokens_exceeded",
				msg: fmt.Sprintf("%s is %d, the server's limit is %d", param, *maxTokens, lim.MaxTokens)}
		}
		sp.MaxTokens, p.maxTokensSet = *maxTokens, true
	}
	stop, err := parseStop(req.Stop)
	if err != nil {
		return nil, invalid("stop", "%v", err)
	}
	sp.Stop = stop
	if req.Seed != nil {
		sp.Seed = uint64(*req.Seed)
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		sp.Seed = binary.LittleEndian.Uint64(b[:])
	}
	if req.StreamOptions != nil {
		if !req.Stream {
			return nil, invalid("stream_options", "stream_options is only allowed with stream: true")
		}
		p.includeUsage = req.StreamOptions.IncludeUsage
	}
	p.params = sp
	return p, nil
}

// messageText accepts a string or an array of {"type":"text","text":...}
// parts; null counts as empty.
func messageText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", errors.New("content must be a string or an array of text parts")
		}
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("content must be a string or an array of text parts")
	}
	var b bytes.Buffer
	for _, part := range parts {
		if part.Type != "text" || part.Text == nil {
			return "", fmt.Errorf("content part of type %q is not supported: only text", part.Type)
		}
		b.WriteString(*part.Text)
	}
	return b.String(), nil
}

func parseStop(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var list []string
	if raw[0] == '"' {
		var one string
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, errors.New("stop must be a string or an array of strings")
		}
		list = []string{one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("stop must be a string or an array of strings")
	}
	if len(list) > 4 {
		return nil, errors.New("at most 4 stop sequences")
	}
	for _, s := range list {
		if s == "" || len(s) > 256 {
			return nil, errors.New("stop sequences must be 1 to 256 bytes")
		}
	}
	return list, nil
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	d := audit.DetailsFrom(r.Context())
	d.Model, d.ManifestSHA256 = s.cfg.Model.Name, s.cfg.Model.ManifestSHA256
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, r, http.StatusMethodNotAllowed, errInvalidRequest, "method_not_allowed", "", "use POST for /v1/chat/completions")
		return
	}
	var req chatRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes))
	err := dec.Decode(&req)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.metrics.rejected.WithLabelValues("body_too_large").Inc()
			writeError(w, r, http.StatusRequestEntityTooLarge, errInvalidRequest, "request_too_large", "",
				fmt.Sprintf("the request body is larger than the limit of %d bytes", mbe.Limit))
			return
		}
		writeError(w, r, http.StatusBadRequest, errInvalidRequest, "invalid_json", "",
			"the request body is not valid JSON for a chat completion: "+err.Error())
		return
	}
	p, bad := s.parseChat(&req)
	if bad != nil {
		status := http.StatusBadRequest
		if bad.code == "model_not_found" {
			status = http.StatusNotFound
		}
		writeError(w, r, status, errInvalidRequest, bad.code, bad.param, bad.msg)
		return
	}
	d.Params = map[string]any{
		"messages": len(p.messages), "temperature": p.params.Temperature, "top_p": p.params.TopP,
		"max_tokens": p.params.MaxTokens, "seed": p.params.Seed, "stream": p.stream,
	}
	if p.params.TopK != 0 {
		d.Params["top_k"] = p.params.TopK
	}
	if p.params.RepetitionPenalty != 0 {
		d.Params["repetition_penalty"] = p.params.RepetitionPenalty
	}
	if len(p.params.Stop) > 0 {
		d.Params["stop"] = p.params.Stop
	}
	prompt, err := s.engine.RenderChat(p.messages, true)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, errInvalidRequest, "invalid_messages", "messages", "cannot render the conversation: "+err.Error())
		return
	}
	d.Prompt = prompt
	ids := s.engine.Encode(prompt)
	d.PromptTokens = len(ids)
	ctxLen := s.engine.Info().ContextLength
	if len(ids) > s.cfg.Limits.MaxPromptTokens || (ctxLen > 0 && len(ids) >= ctxLen) {
		limit := s.cfg.Limits.MaxPromptTokens
		if ctxLen > 0 {
			limit = min(limit, ctxLen-1)
		}
		s.metrics.rejected.WithLabelValues("prompt_too_long").Inc()
		writeError(w, r, http.StatusBadRequest, errInvalidRequest, "context_length_exceeded", "messages",
			fmt.Sprintf("the prompt has %d tokens, the limit is %d", len(ids), limit))
		return
	}
	if ctxLen > 0 {
		p.params.MaxTokens = min(p.params.MaxTokens, ctxLen-len(ids))
	}
	s.generate(w, r, p, ids)
}

// generate runs the engine and writes the completion (JSON or SSE).
func (s *Server) generate(w http.ResponseWriter, r *http.Request, p *parsedChat, ids []int) {
	d := audit.DetailsFrom(r.Context())
	genCtx, cancel := context.WithTimeout(r.Context(), s.cfg.Limits.RequestTimeout)
	defer cancel()
	id := "chatcmpl-" + w.Header().Get("X-Request-Id")
	created := time.Now().Unix()
	fingerprint := "airlock"
	if sha := s.cfg.Model.ManifestSHA256; len(sha) >= 12 {
		fingerprint = "airlock-" + sha[:12]
	}
	stream := &sseStream{w: w, rc: http.NewResponseController(w), chunk: chatChunk{
		ID: id, Object: "chat.completion.chunk", Created: created, Model: s.cfg.Model.Name, SystemFingerprint: fingerprint,
	}}
	var first, last time.Time
	var emit func(runtime.TokenEvent) error
	if p.stream {
		emit = func(ev runtime.TokenEvent) error {
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			last = now
			if !stream.started {
				if err := stream.start(); err != nil {
					return err
				}
			}
			if ev.Text == "" {
				return nil
			}
			return stream.send(chunkDelta{Content: ev.Text}, nil, nil)
		}
	} else {
		emit = func(runtime.TokenEvent) error {
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			last = now
			return nil
		}
	}
	res, err := s.engine.Generate(genCtx, ids, p.params, emit)
	d.Response = res.Text
	d.CompletionTokens = res.CompletionTokens
	d.FinishReason = string(res.FinishReason)
	if res.PromptTokens > 0 {
		d.PromptTokens = res.PromptTokens
	}
	s.metrics.promptTokens.Add(float64(d.PromptTokens))
	s.metrics.completionTokens.Add(float64(res.CompletionTokens))
	if res.CompletionTokens > 1 && last.After(first) {
		s.metrics.tokensPerSecond.Observe(float64(res.CompletionTokens-1) / last.Sub(first).Seconds())
	}

	// Why did generation end early, if it did?
	var status int
	var typ, code, msg string
	switch {
	case errors.Is(err, runtime.ErrQueueFull):
		s.metrics.rejected.WithLabelValues("queue_full").Inc()
		d.FinishReason = ""
		writeRetryAfter(w, r, time.Second, "queue_full", "the generation queue is full; retry later")
		return
	case r.Context().Err() != nil && s.stopCtx.Err() != nil:
		status, typ, code, msg = http.StatusServiceUnavailable, errServer, "shutting_down", "the server is shutting down; generation was cancelled"
		d.FinishReason = string(runtime.FinishCancelled)
	case r.Context().Err() != nil:
		// The client went away; nobody reads a response. Record it as 499
		// (client closed request, nginx's convention).
		d.FinishReason = string(runtime.FinishCancelled)
		d.Error = "client disconnected"
		_ = commitAudit(r.Context(), StatusClientClosed)
		return
	case errors.Is(genCtx.Err(), context.DeadlineExceeded) && (err != nil || res.FinishReason == runtime.FinishCancelled):
		s.metrics.rejected.WithLabelValues("timeout").Inc()
		status, typ, code, msg = http.StatusRequestTimeout, errTimeout, "request_timeout",
			fmt.Sprintf("generation took longer than the limit of %s", s.cfg.Limits.RequestTimeout)
		d.FinishReason = string(runtime.FinishCancelled)
	case err != nil:
		s.cfg.Logger.Error("generation failed", "request_id", w.Header().Get("X-Request-Id"), "error", err.Error())
		status, typ, code, msg = http.StatusInternalServerError, errServer, "generation_failed", "generation failed"
	}
	if status != 0 {
		if stream.started {
			d.Error = msg
			_ = commitAudit(r.Context(), http.StatusOK)
			_ = stream.sendError(apierror.New(typ, code, "", msg))
			return
		}
		writeError(w, r, status, typ, code, "", msg)
		return
	}

	finish := string(res.FinishReason)
	u := usage{PromptTokens: d.PromptTokens, CompletionTokens: res.CompletionTokens, TotalTokens: d.PromptTokens + res.CompletionTokens}
	if !p.stream {
		// The record is durable before the client can see the answer.
		if err := commitAudit(r.Context(), http.StatusOK); err != nil {
			writeError(w, r, http.StatusServiceUnavailable, errServer, "audit_unavailable", "", "the audit log cannot be written; the response is withheld")
			return
		}
		writeJSON(w, http.StatusOK, chatCompletion{
			ID: id, Object: "chat.completion", Created: created, Model: s.cfg.Model.Name, SystemFingerprint: fingerprint,
			Choices: []completionChoice{{Index: 0, Message: responseMessage{Role: "assistant", Content: res.Text}, FinishReason: finish}},
			Usage:   u,
		})
		return
	}
	if !stream.started {
		if err := stream.start(); err != nil {
			return
		}
	}
	if err := commitAudit(r.Context(), http.StatusOK); err != nil {
		_ = stream.sendError(apierror.New(errServer, "audit_unavailable", "", "the audit log cannot be written; the response is incomplete"))
		return
	}
	if err := stream.send(chunkDelta{}, &finish, nil); err != nil {
		return
	}
	if p.includeUsage {
		if err := stream.send(chunkDelta{}, nil, &u); err != nil {
			return
		}
	}
	_ = stream.done()
}

// sseStream writes OpenAI chat.completion.chunk events.
type sseStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	chunk   chatChunk
	started bool
	buf     bytes.Buffer
}

func (st *sseStream) start() error {
	h := st.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	st.w.WriteHeader(http.StatusOK)
	st.started = true
	return st.send(chunkDelta{Role: "assistant"}, nil, nil)
}

// send writes one chunk: a delta with an optional finish reason, or (with
// u set) the usage chunk, whose choices are empty.
func (st *sseStream) send(delta chunkDelta, finish *string, u *usage) error {
	c := st.chunk
	if u != nil {
		c.Choices, c.Usage = []chunkChoice{}, u
	} else {
		c.Choices = []chunkChoice{{Index: 0, Delta: delta, FinishReason: finish}}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return st.write(b)
}

func (st *sseStream) sendError(e apierror.Body) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return st.write(b)
}

func (st *sseStream) done() error { return st.writeRaw([]byte("data: [DONE]\n\n")) }

func (st *sseStream) write(payload []byte) error {
	st.buf.Reset()
	st.buf.WriteString("data: ")
	st.buf.Write(payload)
	st.buf.WriteString("\n\n")
	return st.writeRaw(st.buf.Bytes())
}

func (st *sseStream) writeRaw(b []byte) error {
	_ = st.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := st.w.Write(b); err != nil {
		return err
	}
	return st.rc.Flush()
}
