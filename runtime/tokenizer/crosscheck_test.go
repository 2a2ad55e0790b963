package tokenizer

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// jsTokenizersModule locates tokenizers.js (npm @huggingface/tokenizers
// 0.2.0, which agrees with the Rust library on every golden) for the
// differential test: $TOKENIZERS_JS_DIR, else the e2e node_modules.
func jsTokenizersModule() string {
	var dirs []string
	if d := os.Getenv("TOKENIZERS_JS_DIR"); d != "" {
		dirs = append(dirs, d, filepath.Join(d, "node_modules"))
	}
	dirs = append(dirs, filepath.Join("..", "..", "e2e", "node_modules"))
	for _, d := range dirs {
		p := filepath.Join(d, "@huggingface", "tokenizers", "dist", "tokenizers.mjs")
		if _, err := os.Stat(p); err == nil {
			abs, err := filepath.Abs(p)
			if err == nil {
				return abs
			}
		}
	}
	return ""
}

// diffPieces are fragments chosen to hit every branch of the pre-tokenizer
// regex, NFC, and added-token matching.
var diffPieces = []string{
	"a", "Z", "hello", " world", "The", "'s", "'S", "'ll", "'LL", "'Re", "'ve", "'m", "'d", "'t", "'x", "'", "ſ", "K",
	"0", "7", "123", "٣", "１２", "²", "Ⅻ", "½",
	" ", "  ", "\t", "\n", "\r\n", "\r", "\u0085", "\u00a0", "\u2003", "\u3000", "\ufeff", "\u200b", "\u180e", "\u2028", "\u202f",
	"!", "?!", ".", ",", "...", "(", ")", "{", "}", "\"", "#", "$", "-", "_", "@", "/", "\\",
	"你好", "企业", "。", "，", "「", "」", "日本語", "カタカナ", "한국어", "\u1100\u1161", "e\u0301", "\u0301", "A\u030a", "Å",
	"😀", "👩‍👩‍👧", "🇨🇳", "\u200d", "\ufe0f", "مرحبا", "नमस्ते", "Привет", "Ωμέγα", "ﬁ", "ǅ",
	"<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|im_", "<think>", "<|IM_END|>", "\x00", "\x7f", "\u00ad",
}

// TestDifferentialTokenizersJS encodes a few thousand random strings with
// this package and with tokenizers.js and requires identical ids. Random
// code points are limited to those assigned in Go's Unicode tables
// (15.0.0): Node's newer ICU classifies later additions differently.
func TestDifferentialTokenizersJS(t *testing.T) {
	mod := jsTokenizersModule()
	node, nodeErr := exec.LookPath("node")
	if mod == "" || nodeErr != nil {
		msg := "differential test needs node and npm @huggingface/tokenizers@0.2.0 (set TOKENIZERS_JS_DIR to the directory holding its node_modules)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	tok := qwen(t)
	rng := rand.New(rand.NewPCG(7, 11))
	var inputs []string
	for len(inputs) < 3000 {
		var b strings.Builder
		for k := 1 + rng.IntN(30); k > 0; k-- {
			if rng.IntN(4) > 0 {
				b.WriteString(diffPieces[rng.IntN(len(diffPieces))])
				continue
			}
			r := rune(rng.IntN(0x3000))
			if rng.IntN(4) == 0 {
				r = rune(rng.IntN(0x30000))
			}
			if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co) {
				r = 'x'
			}
			b.WriteRune(r)
		}
		inputs = append(inputs, b.String())
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for _, s := range inputs {
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(qwenDir)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "enc.mjs")
	js := `import { Tokenizer } from ` + jsString("file://"+filepath.ToSlash(mod)) + `;
import fs from "fs";
const dir = ` + jsString(abs) + `;
const tok = new Tokenizer(JSON.parse(fs.readFileSync(dir + "/tokenizer.json", "utf8")),
                          JSON.parse(fs.readFileSync(dir + "/tokenizer_config.json", "utf8")));
const out = fs.readFileSync(process.argv[2], "utf8").split("\n").filter(l => l.length)
  .map(l => JSON.stringify(tok.encode(JSON.parse(l), { add_special_tokens: false }).ids));
fs.writeFileSync(process.argv[3], out.join("\n") + "\n");
`
	if err := os.WriteFile(script, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "out.jsonl")
	if out, err := exec.Command(node, script, in, outPath).CombinedOutput(); err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	of, err := os.Open(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	sc := bufio.NewScanner(of)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	n, bad := 0, 0
	for ; sc.Scan(); n++ {
		var want []int
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode(inputs[n]); !equalIDs(got, want) {
			if bad++; bad <= 5 {
				t.Errorf("Encode(%q)\n got %v\nwant %v (tokenizers.js)", inputs[n], got, want)
			}
		}
	}
	if n != len(inputs) {
		t.Fatalf("tokenizers.js returned %d results for %d inputs", n, len(inputs))
	}
	if bad > 0 {
		t.Errorf("%d of %d differ", bad, n)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
