package runtime

import (
	"context"
	"errors"
)

// This file holds the types the serving layer uses to talk to a loaded model.
// *Model (model.go) provides:
//
//	Load(dir string, opts LoadOptions) (*Model, error)
//	(*Model).Encode(text string) []int
//	(*Model).Decode(ids []int) string
//	(*Model).RenderChat(msgs []Message, addGenerationPrompt bool) (string, error)
//	(*Model).Generate(ctx, promptIDs []int, p SampleParams, emit func(TokenEvent) error) (Result, error)
//	(*Model).ScoreContinuations(ctx, promptIDs []int, continuations [][]int) ([]float64, error)
//	(*Model).Info() ModelInfo
//
// Generate and ScoreContinuations are safe for concurrent use: each call owns
// its KV cache; the weights are shared and read-only.

// Message is one turn of a chat conversation.
type Message struct {
	Role    string `json:"role"` // "system", "user" or "assistant"
	Content string `json:"content"`
}

// SampleParams controls token selection and stopping. The zero value is
// greedy decoding until end of sequence or MaxTokens.
type SampleParams struct {
	Temperature       float32  // 0 means greedy (argmax)
	TopK              int      // 0 means no top-k cut
	TopP              float32  // 0 or 1 means no nucleus cut
	RepetitionPenalty float32  // 0 or 1 means none (HF/CTRL convention)
	Seed              uint64   // same seed, prompt and params give the same tokens
	MaxTokens         int      // 0 means up to the context limit
	Stop              []string // stop strings; the matched text is not emitted
}

// FinishReason says why generation ended (OpenAI's vocabulary).
type FinishReason string

// Finish reasons.
const (
	FinishStop      FinishReason = "stop"      // end-of-sequence token or a stop string
	FinishLength    FinishReason = "length"    // MaxTokens or the context limit
	FinishCancelled FinishReason = "cancelled" // the context was cancelled
)

// TokenEvent is one generated token. Text is the newly decodable UTF-8 text
// it completes (empty while a multi-byte character is still partial).
type TokenEvent struct {
	ID   int
	Text string
}

// Result summarizes one generation.
type Result struct {
	IDs              []int
	Text             string
	PromptTokens     int
	CompletionTokens int
	FinishReason     FinishReason
}

// ModelInfo describes a loaded model.
type ModelInfo struct {
	Name          string // model directory's base name unless configured
	Architecture  string // "Qwen2ForCausalLM" or "LlamaForCausalLM"
	ContextLength int    // max_position_embeddings
	VocabSize     int
	WeightBytes   int64 // bytes of weights read per decoded token
}

// Engine is what the serving layer needs from a loaded model. *Model
// implements it; the server wraps it with admission control.
type Engine interface {
	Encode(text string) []int
	Decode(ids []int) string
	RenderChat(msgs []Message, addGenerationPrompt bool) (string, error)
	Generate(ctx context.Context, promptIDs []int, p SampleParams, emit func(TokenEvent) error) (Result, error)
	ScoreContinuations(ctx context.Context, promptIDs []int, continuations [][]int) ([]float64, error)
	Info() ModelInfo
}

// ErrQueueFull is returned by an admission-controlled Engine when every
// generation slot is busy and the wait queue is full (HTTP 429).
var ErrQueueFull = errors.New("generation queue is full")
