package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/airlock-dev/airlock/runtime/chattemplate"
	"github.com/airlock-dev/airlock/runtime/tokenizer"
)

// tokenizerCodec adapts runtime/tokenizer and runtime/chattemplate.
type tokenizerCodec struct {
	tok  *tokenizer.Tokenizer
	tmpl *chattemplate.Template // nil without a chat template
}

// loadTextCodec loads the tokenizer and chat template of dir. A directory
// without tokenizer.json has no text codec (token ids only).
func loadTextCodec(dir string) (textCodec, error) {
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	c := &tokenizerCodec{tok: tok}
	cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err == nil {
		tmpl, err := chattemplate.FromConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("chat template: %w", err)
		}
		c.tmpl = tmpl
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer_config.json: %w", err)
	}
	return c, nil
}

func (c *tokenizerCodec) encode(text string) []int {
	ids := c.tok.Encode(text)
	if bos, ok := c.tok.BOSID(); ok && c.tok.AddBOS() && (len(ids) == 0 || ids[0] != bos) {
		ids = append([]int{bos}, ids...)
	}
	return ids
}

func (c *tokenizerCodec) decode(ids []int) string { return c.tok.Decode(ids) }

func (c *tokenizerCodec) newStream() streamDecoder { return tokStream{c.tok.NewStreamDecoder()} }

func (c *tokenizerCodec) renderChat(msgs []Message, addGenerationPrompt bool) (string, error) {
	if c.tmpl == nil {
		return "", errors.New("the model directory has no chat template")
	}
	cm := make([]chattemplate.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chattemplate.Message{Role: m.Role, Content: m.Content}
	}
	return c.tmpl.Render(cm, addGenerationPrompt)
}

func (c *tokenizerCodec) stopIDs() []int {
	ids := c.tok.EOSIDs()
	for _, s := range []string{"<|im_end|>", "<|endoftext|>"} {
		if id, ok := c.tok.TokenID(s); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

type tokStream struct{ d *tokenizer.StreamDecoder }

func (s tokStream) push(id int) string { return s.d.Push(id) }
func (s tokStream) flush() string      { return s.d.Flush() }
