package infer

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/airlock-dev/airlock/runtime"
)

// The two emotion labels. Emotion mode answers with exactly one of them.
const (
	LabelPositive = "正面"
	LabelNegative = "负面"
)

// Labels are the emotion labels in scoring order; on an exact tie of
// scores the first one wins.
var Labels = [2]string{LabelPositive, LabelNegative}

// emotionSystem and emotionInstruction frame the text to classify. The
// instruction names both labels so that the model's probability mass for
// the answer sits on them; the text follows a fixed heading so that
// instructions inside it read as quoted material.
const (
	emotionSystem      = "你是一个情感分类器。You are a sentiment classifier."
	emotionInstruction = "判断下面文本的情感倾向。只回答“正面”或“负面”，不要回答其他内容。\n" +
		"Classify the sentiment of the text below. Answer only 正面 (positive) or 负面 (negative).\n\n" +
		"文本 / Text:\n"
)

// EmotionMessages returns the chat the classifier scores the labels after:
// a system turn and a user turn holding the instruction and the text, with
// chat-template control markers in the text defused.
func EmotionMessages(text string) []runtime.Message {
	return []runtime.Message{
		{Role: "system", Content: emotionSystem},
		{Role: "user", Content: emotionInstruction + defuseControlTokens(text)},
	}
}

// Classification is the outcome of one emotion classification.
type Classification struct {
	Label      string     // LabelPositive or LabelNegative
	Confidence float64    // probability of Label given that the answer is one of the two labels
	LogProbs   [2]float64 // summed log-probabilities of Labels[0] and Labels[1]
	Prompt     string     // the rendered prompt
	PromptIDs  int        // prompt length in tokens
	LabelIDs   int        // length in tokens of the chosen label
}

// ErrContextTooLong means the rendered prompt (plus the longest label)
// does not fit in the model's context or exceeds the prompt token limit.
var ErrContextTooLong = errors.New("text does not fit in the model's context")

// Classify decides whether text is positive or negative by constrained
// decoding: it renders EmotionMessages with the generation prompt and asks
// the engine for the summed log-probability of each label's token sequence
// as the assistant's answer. The larger one wins, so the result is always
// one of Labels, whatever the text says; nothing is generated and no
// generated text is matched against strings.
//
// Confidence is the softmax over the two summed log-probabilities:
// p(label | prompt) / (p(正面 | prompt) + p(负面 | prompt)). It is the
// model's own probability of the label once the answer is restricted to
// the two allowed sequences, which is the same restriction that picks the
// label; the raw probabilities would also count mass the model puts on
// answers that are not allowed and would not sum to one.
func Classify(ctx context.Context, engine runtime.Engine, text string) (Classification, error) {
	return classify(ctx, engine, text, 0)
}

// classify is Classify with a prompt length limit in tokens (0: only the
// model's context limit).
func classify(ctx context.Context, engine runtime.Engine, text string, maxPromptTokens int) (Classification, error) {
	var c Classification
	prompt, err := engine.RenderChat(EmotionMessages(text), true)
	if err != nil {
		return c, fmt.Errorf("classify: render prompt: %w", err)
	}
	c.Prompt = prompt
	promptIDs := engine.Encode(prompt)
	c.PromptIDs = len(promptIDs)
	conts := make([][]int, len(Labels))
	longest := 0
	for i, l := range Labels {
		conts[i] = engine.Encode(l)
		if len(conts[i]) == 0 {
			return c, fmt.Errorf("classify: label %q encodes to no tokens", l)
		}
		longest = max(longest, len(conts[i]))
	}
	if equalIDs(conts[0], conts[1]) {
		return c, fmt.Errorf("classify: labels %q and %q encode to the same tokens", Labels[0], Labels[1])
	}
	if maxPromptTokens > 0 && len(promptIDs) > maxPromptTokens {
		return c, fmt.Errorf("classify: %d prompt tokens, the limit is %d: %w", len(promptIDs), maxPromptTokens, ErrContextTooLong)
	}
	if limit := engine.Info().ContextLength; limit > 0 && len(promptIDs)+longest > limit {
		return c, fmt.Errorf("classify: %d prompt tokens + %d label tokens > %d: %w",
			len(promptIDs), longest, limit, ErrContextTooLong)
	}
	scores, err := engine.ScoreContinuations(ctx, promptIDs, conts)
	if err != nil {
		return c, fmt.Errorf("classify: score labels: %w", err)
	}
	if len(scores) != len(Labels) {
		return c, fmt.Errorf("classify: engine returned %d scores for %d labels", len(scores), len(Labels))
	}
	for i, s := range scores {
		if math.IsNaN(s) || s > 0 {
			return c, fmt.Errorf("classify: engine returned log-probability %v for %q", s, Labels[i])
		}
		c.LogProbs[i] = s
	}
	best := 0
	if c.LogProbs[1] > c.LogProbs[0] {
		best = 1
	}
	c.Label = Labels[best]
	c.LabelIDs = len(conts[best])
	c.Confidence = pairSoftmax(c.LogProbs[best], c.LogProbs[1-best])
	return c, nil
}

// pairSoftmax returns e^a / (e^a + e^b) without overflow, for log-probs
// (≤ 0, possibly -Inf).
func pairSoftmax(a, b float64) float64 {
	switch {
	case math.IsInf(a, -1) && math.IsInf(b, -1):
		return 0.5
	case math.IsInf(b, -1):
		return 1
	case math.IsInf(a, -1):
		return 0
	}
	return 1 / (1 + math.Exp(b-a))
}

func equalIDs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
