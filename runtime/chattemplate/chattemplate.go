// Package chattemplate renders chat conversations into prompt text with the
// chat template of a model's tokenizer_config.json.
//
// Hugging Face chat templates are Jinja programs. Instead of embedding a
// general Jinja interpreter, this package recognises the templates of the
// model families airlock supports and renders them with equivalent Go code:
//
//   - ChatML with a default system prompt (Qwen1.5: "You are a helpful
//     assistant"; Qwen2-Instruct: "You are a helpful assistant."; any other
//     default text in the same template is accepted and used);
//   - plain ChatML without a default system prompt (the Hugging Face default
//     ChatML template, also with its "add_generation_prompt is defined" guard);
//   - Llama-2 chat ([INST] ... [/INST], <<SYS>> system block, bos/eos tokens,
//     alternating user/assistant roles);
//   - Llama-3 instruct (<|start_header_id|>role<|end_header_id|>, trimmed
//     content, <|eot_id|>, bos_token before the first message).
//
// Recognition compares the template's structure, ignoring whitespace inside
// Jinja tags and the quoting style of string literals, with the known
// templates; only the default system prompt may vary. Any other template is
// rejected with ErrUnknownTemplate instead of being rendered approximately:
// a wrong prompt format silently degrades a model, a clear error does not.
// This is robust for the supported families (their renderings are pinned by
// reference outputs) and keeps untrusted template code from running at all.
package chattemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/airlock-dev/airlock/runtime/tokenizer"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ErrUnknownTemplate is returned for a chat template that is not one of the
// recognised families.
var ErrUnknownTemplate = errors.New("unsupported chat template (supported: ChatML, Qwen ChatML with default system prompt, Llama-2 [INST], Llama-3)")

// ErrNoTemplate is returned when tokenizer_config.json has no chat_template.
var ErrNoTemplate = errors.New("tokenizer_config.json has no chat_template")

// Kind identifies a recognised template family.
type Kind int

// Recognised template families.
const (
	ChatML              Kind = iota + 1 // ChatML, no default system prompt
	ChatMLDefaultSystem                 // ChatML, default system prompt when the first message is not "system"
	Llama2                              // Llama-2 chat [INST] format
	Llama3                              // Llama-3 instruct header format
)

// String returns the family's name.
func (k Kind) String() string {
	switch k {
	case ChatML:
		return "chatml"
	case ChatMLDefaultSystem:
		return "chatml-default-system"
	case Llama2:
		return "llama2"
	case Llama3:
		return "llama3"
	}
	return "unknown"
}

// Template is a recognised chat template, ready to render. It is immutable
// and safe for concurrent use.
type Template struct {
	kind          Kind
	defaultSystem string
	bos, eos      string
}

// Kind returns the template's family.
func (t *Template) Kind() Kind { return t.kind }

// DefaultSystemPrompt returns the system prompt inserted when a conversation
// does not start with a system message ("" if the template has none).
func (t *Template) DefaultSystemPrompt() string { return t.defaultSystem }

// FromConfig reads chat_template, bos_token and eos_token from the contents
// of tokenizer_config.json and recognises the template. chat_template may be
// a string or a list of {"name", "template"} objects (the one named
// "default" is used).
func FromConfig(tokenizerConfigJSON []byte) (*Template, error) {
	var cfg struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOSToken     json.RawMessage `json:"bos_token"`
		EOSToken     json.RawMessage `json:"eos_token"`
	}
	if err := json.Unmarshal(tokenizerConfigJSON, &cfg); err != nil {
		return nil, fmt.Errorf("chat template: parse tokenizer_config.json: %w", err)
	}
	src, err := templateSource(cfg.ChatTemplate)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	bos, err := tokenizer.ConfigTokenText(cfg.BOSToken)
	if err != nil {
		return nil, fmt.Errorf("chat template: bos_token: %w", err)
	}
	eos, err := tokenizer.ConfigTokenText(cfg.EOSToken)
	if err != nil {
		return nil, fmt.Errorf("chat template: eos_token: %w", err)
	}
	return New(src, bos, eos)
}

func templateSource(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", ErrNoTemplate
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("chat_template is neither a string nor a list of named templates: %w", err)
	}
	for _, t := range list {
		if t.Name == "default" {
			return t.Template, nil
		}
	}
	return "", fmt.Errorf("chat_template list has no template named \"default\"")
}

// New recognises a chat template source; bos and eos are the texts of the
// bos_token and eos_token it may refer to.
func New(source, bos, eos string) (*Template, error) {
	canon, err := canonical(source)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	for _, k := range known {
		m := k.re.FindStringSubmatch(canon)
		if m == nil {
			continue
		}
		t := &Template{kind: k.kind, bos: bos, eos: eos}
		if len(m) > 1 {
			s, err := strconv.Unquote(`"` + m[1] + `"`)
			if err != nil {
				return nil, fmt.Errorf("chat template: default system prompt: %w", err)
			}
			t.defaultSystem = s
		}
		if k.kind == Llama2 && (bos == "" || eos == "") {
			return nil, fmt.Errorf("chat template: the Llama-2 template needs bos_token and eos_token")
		}
		if k.kind == Llama3 && bos == "" {
			return nil, fmt.Errorf("chat template: the Llama-3 template needs bos_token")
		}
		return t, nil
	}
	return nil, ErrUnknownTemplate
}

// Render returns the prompt text for msgs, followed by the opening of an
// assistant turn when addGenerationPrompt is true (ignored by Llama-2, whose
// template has no generation prompt). Content is inserted verbatim, exactly
// as the reference templates do: text such as "<|im_end|>" inside a message
// is later encoded as the special token by the tokenizer.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	var b strings.Builder
	switch t.kind {
	case ChatML, ChatMLDefaultSystem:
		for i, m := range msgs {
			if i == 0 && t.kind == ChatMLDefaultSystem && msgs[0].Role != "system" {
				b.WriteString("<|im_start|>system\n")
				b.WriteString(t.defaultSystem)
				b.WriteString("<|im_end|>\n")
			}
			b.WriteString("<|im_start|>")
			b.WriteString(m.Role)
			b.WriteString("\n")
			b.WriteString(m.Content)
			b.WriteString("<|im_end|>\n")
		}
		if addGenerationPrompt {
			b.WriteString("<|im_start|>assistant\n")
		}
	case Llama2:
		loop, system, hasSystem := msgs, "", false
		if len(msgs) > 0 && msgs[0].Role == "system" {
			loop, system, hasSystem = msgs[1:], msgs[0].Content, true
		}
		for i, m := range loop {
			if (m.Role == "user") != (i%2 == 0) {
				return "", fmt.Errorf("render chat: conversation roles must alternate user/assistant/user/assistant/... (message %d is %q)", i, m.Role)
			}
			content := m.Content
			if i == 0 && hasSystem {
				content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.Content
			}
			switch m.Role {
			case "user":
				b.WriteString(t.bos + "[INST] " + pyStrip(content) + " [/INST]")
			case "assistant":
				b.WriteString(" " + pyStrip(content) + " " + t.eos)
			}
		}
	case Llama3:
		for i, m := range msgs {
			if i == 0 {
				b.WriteString(t.bos)
			}
			b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + pyStrip(m.Content) + "<|eot_id|>")
		}
		if addGenerationPrompt {
			b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
		}
	default:
		return "", ErrUnknownTemplate
	}
	return b.String(), nil
}

// pyStrip is Python's str.strip(): it removes leading and trailing
// characters for which str.isspace() is true.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
	})
}

type knownTemplate struct {
	kind Kind
	re   *regexp.Regexp
}

// defaultMark stands for the default system prompt in known sources.
const defaultMark = "\x00"

var known = func() []knownTemplate {
	const chatmlBody = `{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`
	sources := []struct {
		kind Kind
		src  string
	}{
		{ChatMLDefaultSystem, `{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n` + defaultMark + `<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`},
		{ChatML, chatmlBody},
		{ChatML, `{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}` + chatmlBody},
		{Llama2, `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`},
		// Meta-Llama-3-8B-Instruct. Jinja filters bind tighter than +, so
		// only the content is trimmed.
		{Llama3, "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"},
	}
	var out []knownTemplate
	for _, s := range sources {
		canon, err := canonical(s.src)
		if err != nil {
			panic(fmt.Sprintf("chattemplate: known template: %v", err))
		}
		pat := regexp.QuoteMeta(canon)
		pat = strings.Replace(pat, regexp.QuoteMeta(`\x00`), `((?:[^"\\]|\\.)*)`, 1)
		out = append(out, knownTemplate{s.kind, regexp.MustCompile(`^` + pat + `$`)})
	}
	return out
}()

// canonical rewrites a template so that equivalent spellings compare
// equal: text outside tags is kept as is; inside {{ }} and {% %} tags
// whitespace outside string literals is removed and each string literal is
// replaced by the Go-quoted form of its value (so '\n', "\n" and a literal
// newline are the same). Comments {# #} are dropped.
func canonical(src string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(src); {
		open := strings.IndexAny(src[i:], "{")
		if open < 0 {
			b.WriteString(src[i:])
			break
		}
		open += i
		if open+1 >= len(src) || (src[open+1] != '{' && src[open+1] != '%' && src[open+1] != '#') {
			b.WriteString(src[i : open+1])
			i = open + 1
			continue
		}
		b.WriteString(src[i:open])
		kind := src[open+1]
		closeDelim := map[byte]string{'{': "}}", '%': "%}", '#': "#}"}[kind]
		if kind == '#' {
			end := strings.Index(src[open+2:], closeDelim)
			if end < 0 {
				return "", fmt.Errorf("unterminated comment at offset %d", open)
			}
			i = open + 2 + end + 2
			continue
		}
		b.WriteString(src[open : open+2])
		j := open + 2
		for {
			if j >= len(src) {
				return "", fmt.Errorf("unterminated tag at offset %d", open)
			}
			c := src[j]
			if strings.HasPrefix(src[j:], closeDelim) {
				b.WriteString(closeDelim)
				j += 2
				break
			}
			switch {
			case c == '\'' || c == '"':
				val, n, err := stringLiteral(src[j:])
				if err != nil {
					return "", fmt.Errorf("offset %d: %w", j, err)
				}
				b.WriteString(strconv.Quote(val))
				j += n
			case c == ' ' || c == '\t' || c == '\n' || c == '\r':
				j++
			default:
				b.WriteByte(c)
				j++
			}
		}
		i = j
	}
	return b.String(), nil
}

// stringLiteral decodes the Jinja string literal at the start of s and
// returns its value and length.
func stringLiteral(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated string literal")
}
