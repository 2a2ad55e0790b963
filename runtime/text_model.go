package runtime

import "errors"

// ErrNoTokenizer is returned for text operations on a model directory that
// has no tokenizer.json.
var ErrNoTokenizer = errors.New("the model directory has no tokenizer.json")

// Encode turns text into token ids (special tokens such as <|im_start|> in
// the text are recognized). Without a tokenizer it returns nil.
func (m *Model) Encode(text string) []int {
	if m.text == nil {
		return nil
	}
	return m.text.encode(text)
}

// Decode turns token ids back into text.
func (m *Model) Decode(ids []int) string {
	if m.text == nil {
		return ""
	}
	return m.text.decode(ids)
}

// RenderChat applies the model's chat template to msgs.
func (m *Model) RenderChat(msgs []Message, addGenerationPrompt bool) (string, error) {
	if m.text == nil {
		return "", ErrNoTokenizer
	}
	return m.text.renderChat(msgs, addGenerationPrompt)
}

// HasTokenizer reports whether text operations are available.
func (m *Model) HasTokenizer() bool { return m.text != nil }

// compile-time check that *Model satisfies the serving contract.
var _ Engine = (*Model)(nil)
