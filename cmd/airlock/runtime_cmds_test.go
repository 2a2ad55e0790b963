package main

import (
	"encoding/json"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const tinyModelDir = "../../testdata/tiny-qwen2"

// capture runs airlock with args, stdin as standard input, and returns the
// exit code and standard output.
func capture(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.WriteString(inW, stdin); inW.Close() }()
	oldOut, oldIn := os.Stdout, os.Stdin
	os.Stdout, os.Stdin = outW, inR
	done := make(chan string)
	go func() { b, _ := io.ReadAll(outR); done <- string(b) }()
	code := run(append([]string{"airlock"}, args...))
	os.Stdout, os.Stdin = oldOut, oldIn
	outW.Close()
	inR.Close()
	return code, <-done
}

type expectedPrompt struct {
	Name   string `json:"name"`
	IDs    []int  `json:"ids"`
	Greedy struct {
		Tokens    []int     `json:"tokens"`
		Top1Logit []float64 `json:"top1_logit"`
	} `json:"greedy"`
}

func expectedPrompts(t *testing.T) map[string]expectedPrompt {
	data, err := os.ReadFile(tinyModelDir + "/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Prompts []expectedPrompt }
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	m := map[string]expectedPrompt{}
	for _, p := range e.Prompts {
		m[p.Name] = p
	}
	return m
}

func TestGenerateJSON(t *testing.T) {
	p := expectedPrompts(t)["random_ids"]
	ids := make([]string, len(p.IDs))
	for i, id := range p.IDs {
		ids[i] = strings.TrimSpace(strings.Repeat(" ", i%2)) + itoa(id)
	}
	code, out := capture(t, "", "generate", tinyModelDir, "--prompt-ids", strings.Join(ids, ","),
		"--max-tokens", "24", "--temperature", "0", "--top-logits", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got struct {
		PromptIDs []int  `json:"prompt_ids"`
		IDs       []int  `json:"ids"`
		Text      string `json:"text"`
		Steps     []struct {
			ID  int          `json:"id"`
			Top [][2]float64 `json:"top"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal([]byte(out), &keys)
	if names := sortedKeys(keys); !reflect.DeepEqual(names, []string{"ids", "prompt_ids", "steps", "text"}) {
		t.Fatalf("keys %v", names)
	}
	if !reflect.DeepEqual(got.PromptIDs, p.IDs) || !reflect.DeepEqual(got.IDs, p.Greedy.Tokens) || len(got.Steps) != 24 || got.Text == "" {
		t.Fatalf("generate --json: %+v", got)
	}
	for i, s := range got.Steps {
		if s.ID != got.IDs[i] || len(s.Top) != 3 || int(s.Top[0][0]) != s.ID ||
			math.Abs(s.Top[0][1]-p.Greedy.Top1Logit[i]) > 1e-3 || s.Top[1][1] > s.Top[0][1] || s.Top[2][1] > s.Top[1][1] {
			t.Fatalf("step %d: %+v (want top id %d logit %v)", i, s, got.IDs[i], p.Greedy.Top1Logit[i])
		}
	}
}

func TestGenerateChatUsesTemplate(t *testing.T) {
	p := expectedPrompts(t)["chatml_zh"]
	code, out := capture(t, "", "generate", tinyModelDir, "--chat", "内网安全部署", "--max-tokens", "4", "--temperature", "0", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got struct {
		PromptIDs []int `json:"prompt_ids"`
		IDs       []int `json:"ids"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.PromptIDs, p.IDs) || !reflect.DeepEqual(got.IDs, p.Greedy.Tokens[:4]) {
		t.Fatalf("chat prompt ids %v → %v, want %v → %v", got.PromptIDs, got.IDs, p.IDs, p.Greedy.Tokens[:4])
	}
}

func TestRuntimeCommandUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"generate", tinyModelDir},
		{"generate", tinyModelDir, "--prompt", "a", "--chat", "b"},
		{"generate", tinyModelDir, "--prompt-ids", "1,x"},
		{"generate", tinyModelDir, "--prompt-ids", "999999999"},
		{"generate", "--prompt", "a"},
		{"generate", "/nonexistent-dir", "--prompt", "a"},
		{"tokenize"},
		{"bench", tinyModelDir, "extra"},
		{"chat", tinyModelDir, "--no-such-flag"},
	} {
		if code, _ := capture(t, "", args...); code != exitUsage {
			t.Errorf("airlock %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestTokenize(t *testing.T) {
	code, out := capture(t, "What is 2 plus 2?", "tokenize", tinyModelDir, "--json")
	if code != 0 || strings.TrimSpace(out) != `{"ids":[3838,374,220,17,5519,220,17,30]}` {
		t.Fatalf("tokenize --json: exit %d, %q", code, out)
	}
	code, out = capture(t, "你好", "tokenize", tinyModelDir)
	if code != 0 || strings.TrimSpace(out) != "108386" {
		t.Fatalf("tokenize: exit %d, %q", code, out)
	}
}

func TestChatCommand(t *testing.T) {
	code, out := capture(t, "hello\n/reset\nagain\n", "chat", tinyModelDir, "--max-tokens", "3", "--temperature", "0")
	if code != 0 || strings.Count(out, "> ") < 3 || !strings.Contains(out, "(new conversation)") {
		t.Fatalf("chat: exit %d, %q", code, out)
	}
}

func TestBenchJSONKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("bench runs a 512-token prefill")
	}
	code, out := capture(t, "", "bench", tinyModelDir, "--json", "--repeats", "1", "--bandwidth-mib", "8")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got map[string]float64
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	want := []string{"decode_tok_s", "load_ms", "mem_bw_gb_s", "peak_rss_bytes", "prefill_512_tok_s",
		"prefill_64_tok_s", "ttft_ms", "weight_bytes_per_token"}
	if names := sortedKeys(got); !reflect.DeepEqual(names, want) {
		t.Fatalf("keys %v, want %v", names, want)
	}
	for k, v := range got {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", k, v)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
