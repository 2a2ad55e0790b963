package chattemplate

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/airlock-dev/airlock/runtime/tokenizer"
)

var qwenDir = filepath.Join("..", "..", "testdata", "qwen-tokenizer")

var (
	tokOnce sync.Once
	tok     *tokenizer.Tokenizer
	tokErr  error
)

func qwenTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	tokOnce.Do(func() { tok, tokErr = tokenizer.LoadDir(qwenDir) })
	if tokErr != nil {
		t.Fatalf("load tokenizer: %v", tokErr)
	}
	return tok
}

func qwenTemplate(t *testing.T) *Template {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(qwenDir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := FromConfig(cfg)
	if err != nil {
		t.Fatalf("FromConfig: %v", err)
	}
	return tpl
}

func TestQwenChatGoldens(t *testing.T) {
	tpl := qwenTemplate(t)
	if tpl.Kind() != ChatMLDefaultSystem || tpl.DefaultSystemPrompt() != "You are a helpful assistant" {
		t.Fatalf("recognised %v with default %q, want chatml-default-system with Qwen1.5's prompt", tpl.Kind(), tpl.DefaultSystemPrompt())
	}
	tk := qwenTokenizer(t)
	f, err := os.Open(filepath.Join(qwenDir, "chat_goldens.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	n := 0
	for sc.Scan() {
		n++
		var g struct {
			Messages            []Message `json:"messages"`
			AddGenerationPrompt bool      `json:"add_generation_prompt"`
			Text                string    `json:"text"`
			IDs                 []int     `json:"ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		got, err := tpl.Render(g.Messages, g.AddGenerationPrompt)
		if err != nil {
			t.Errorf("line %d: Render: %v", n, err)
			continue
		}
		if got != g.Text {
			t.Errorf("line %d: Render =\n%q\nwant\n%q", n, got, g.Text)
		}
		ids := tk.Encode(got)
		if len(ids) != len(g.IDs) {
			t.Errorf("line %d: %d ids, want %d", n, len(ids), len(g.IDs))
			continue
		}
		for i := range ids {
			if ids[i] != g.IDs[i] {
				t.Errorf("line %d: ids[%d] = %d, want %d", n, i, ids[i], g.IDs[i])
				break
			}
		}
	}
	if n != 14 {
		t.Fatalf("read %d chat goldens, want 14", n)
	}
}

// The Qwen2-Instruct template: Qwen1.5's with a final period in the default
// system prompt.
const qwen2Template = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

func TestQwen2DefaultSystemPrompt(t *testing.T) {
	tpl, err := New(qwen2Template, "", "<|im_end|>")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render([]Message{{"user", "Hi"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// An explicit system message replaces the default one.
	got, _ = tpl.Render([]Message{{"system", "Be brief."}, {"user", "Hi"}}, false)
	want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSpellingVariantsAreRecognised(t *testing.T) {
	// Escaped newlines, double quotes and different spacing inside tags
	// denote the same program.
	variant := strings.NewReplacer("\n", `\n`, "{{ '", `{{"`, "' }}", `"}}`, " + ", "+").Replace(qwen2Template)
	variant = strings.ReplaceAll(variant, `"}}{% endif %}{{'<|im_start|>'`, `" }}{% endif %}{{ '<|im_start|>'`)
	tpl, err := New(variant, "", "")
	if err != nil {
		t.Fatalf("variant %q: %v", variant, err)
	}
	if tpl.Kind() != ChatMLDefaultSystem || tpl.DefaultSystemPrompt() != "You are a helpful assistant." {
		t.Fatalf("got %v %q", tpl.Kind(), tpl.DefaultSystemPrompt())
	}
}

func TestPlainChatML(t *testing.T) {
	src := "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
	tpl, err := New(src, "", "")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := tpl.Render([]Message{{"user", "a"}, {"assistant", "b"}}, true)
	want := "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n<|im_start|>assistant\n"
	if tpl.Kind() != ChatML || got != want {
		t.Fatalf("kind %v, got %q, want %q", tpl.Kind(), got, want)
	}
}

// llama2Config is the chat template and special tokens of Llama-2-chat's
// tokenizer_config.json (JSON-escaped as in the file).
const llama2Config = `{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
 "chat_template": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"}`

func TestLlama2(t *testing.T) {
	tpl, err := FromConfig([]byte(llama2Config))
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Kind() != Llama2 {
		t.Fatalf("kind %v", tpl.Kind())
	}
	got, err := tpl.Render([]Message{
		{"system", "Be brief."},
		{"user", "  Hi \n"},
		{"assistant", "Hello."},
		{"user", "Bye"},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	// Worked by hand from the template: the system block is prefixed to the
	// first user turn before strip(), so only the outer whitespace of the
	// combined content goes ("  Hi" keeps its leading spaces); assistant
	// turns end in eos.
	want := "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n  Hi [/INST] Hello. </s><s>[INST] Bye [/INST]"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if _, err := tpl.Render([]Message{{"assistant", "x"}}, false); err == nil || !strings.Contains(err.Error(), "alternate") {
		t.Fatalf("non-alternating roles: err = %v, want an alternation error", err)
	}
}

func TestUnknownTemplateIsAnError(t *testing.T) {
	for _, src := range []string{
		"{{ messages }}",
		strings.Replace(qwen2Template, "'<|im_end|>' + '\n'", "'<|im_end|>'", 1),
		"{% for m in messages %}{{ m.content }}{% endfor %}",
		"{{ 'unterminated }}",
	} {
		if _, err := New(src, "", ""); err == nil {
			t.Errorf("New(%q) succeeded, want an error", src)
		} else if !errors.Is(err, ErrUnknownTemplate) && !strings.Contains(err.Error(), "unterminated") {
			t.Errorf("New(%q) = %v", src, err)
		}
	}
	if _, err := FromConfig([]byte(`{"eos_token":"x"}`)); !errors.Is(err, ErrNoTemplate) {
		t.Errorf("missing chat_template: %v, want ErrNoTemplate", err)
	}
	if _, err := FromConfig([]byte(`{`)); err == nil {
		t.Error("malformed JSON accepted")
	}
}

func TestNamedTemplateList(t *testing.T) {
	cfg, _ := json.Marshal(map[string]any{
		"chat_template": []map[string]string{{"name": "tool_use", "template": "{{ x }}"}, {"name": "default", "template": qwen2Template}},
	})
	tpl, err := FromConfig(cfg)
	if err != nil || tpl.Kind() != ChatMLDefaultSystem {
		t.Fatalf("FromConfig(list) = %v, %v", tpl, err)
	}
}

func TestLlama3(t *testing.T) {
	cfg := `{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"}`
	tpl, err := FromConfig([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render([]Message{{"system", "S "}, {"user", "\tHi"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	// By hand: bos once, each turn header + trimmed content + <|eot_id|>,
	// then the assistant header.
	want := "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
	if tpl.Kind() != Llama3 || got != want {
		t.Fatalf("kind %v\ngot  %q\nwant %q", tpl.Kind(), got, want)
	}
}

// FuzzNew checks that template recognition never panics and that a
// recognised template renders without error for a simple conversation.
func FuzzNew(f *testing.F) {
	f.Add(qwen2Template)
	f.Add("{{ 'a' }}{% if x %}{# c #}{% endif %}")
	f.Add("{{ \"\\n\\'\" }}")
	f.Add("{")
	f.Fuzz(func(t *testing.T, src string) {
		tpl, err := New(src, "<s>", "</s>")
		if err != nil {
			return
		}
		if _, err := tpl.Render([]Message{{"user", "hi"}}, true); err != nil {
			t.Fatalf("recognised %v but Render failed: %v", tpl.Kind(), err)
		}
	})
}
