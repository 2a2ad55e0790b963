package tokenizer

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

var (
	mixedOnce sync.Once
	mixedText string
)

// mixedCorpus returns about 1 MB of deterministic pseudo-random mixed
// Chinese/English text: sentences of Chinese characters and English words
// drawn from the goldens' zh, en and mixed cases, with punctuation, digits,
// spaces and newlines. Being random, it repeats words far less than real
// text, so the word cache helps less than in practice.
func mixedCorpus(tb testing.TB) string {
	mixedOnce.Do(func() {
		var han []rune
		var words []string
		seen := map[rune]bool{}
		for _, g := range readGoldens(tb) {
			switch g.Category {
			case "zh", "mixed", "en", "long":
			default:
				continue
			}
			for _, r := range g.Text {
				if r >= 0x4E00 && r <= 0x9FFF && !seen[r] {
					seen[r] = true
					han = append(han, r)
				}
			}
			for _, w := range strings.Fields(g.Text) {
				if w != "" && w[0] < utf8.RuneSelf {
					words = append(words, w)
				}
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		var b strings.Builder
		for b.Len() < 1<<20 {
			if rng.IntN(2) == 0 {
				for n := 4 + rng.IntN(16); n > 0; n-- {
					b.WriteRune(han[rng.IntN(len(han))])
				}
				b.WriteString([]string{"，", "。", "、", "：", "！"}[rng.IntN(5)])
			} else {
				for n := 3 + rng.IntN(10); n > 0; n-- {
					b.WriteString(words[rng.IntN(len(words))])
					b.WriteByte(' ')
				}
				if rng.IntN(4) == 0 {
					b.WriteString(strings.Repeat("1234567890", 1)[:1+rng.IntN(9)])
				}
			}
			if rng.IntN(8) == 0 {
				b.WriteString("\n\n")
			}
		}
		mixedText = b.String()
	})
	return mixedText
}

// BenchmarkEncodeMixed measures Encode on the mixed Chinese/English corpus
// with a warm word cache (the steady state of a server).
func BenchmarkEncodeMixed(b *testing.B) {
	tok := qwen(b)
	text := mixedCorpus(b)
	ids := make([]int, 0, len(text))
	ids = tok.AppendEncode(ids[:0], text) // warm the cache
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	m := startCPUMeter(b)
	for b.Loop() {
		ids = tok.AppendEncode(ids[:0], text)
	}
	m.stop(int64(len(text)))
	b.ReportMetric(float64(len(ids))/float64(len(text)), "tokens/byte")
}

// BenchmarkEncodeMixedNoCache measures Encode with the word cache disabled:
// every word goes through BPE (the cold worst case).
func BenchmarkEncodeMixedNoCache(b *testing.B) {
	base := qwen(b)
	tok := *base
	tok.cache = newWordCache(0)
	text := mixedCorpus(b)
	ids := make([]int, 0, len(text))
	b.SetBytes(int64(len(text)))
	m := startCPUMeter(b)
	for b.Loop() {
		ids = tok.AppendEncode(ids[:0], text)
	}
	m.stop(int64(len(text)))
}

// BenchmarkPreTokenizeMixed measures the Qwen2 pre-tokenizer scanner alone.
func BenchmarkPreTokenizeMixed(b *testing.B) {
	text := mixedCorpus(b)
	q := knownRegex[qwen2Pattern]
	b.SetBytes(int64(len(text)))
	words := 0
	m := startCPUMeter(b)
	for b.Loop() {
		for i := 0; i < len(text); {
			i = q.next(text, i)
			words++
		}
	}
	m.stop(int64(len(text)))
}

// BenchmarkBaselineRuneScan is a machine-speed yardstick measured in the
// same run: decoding every rune of the corpus (utf8.DecodeRuneInString).
// Encode figures are reported as ratios to it.
func BenchmarkBaselineRuneScan(b *testing.B) {
	text := mixedCorpus(b)
	b.SetBytes(int64(len(text)))
	n := 0
	m := startCPUMeter(b)
	for b.Loop() {
		for _, r := range text {
			if r > 0x4E00 {
				n++
			}
		}
	}
	m.stop(int64(len(text)))
	_ = n
}

// BenchmarkDecodeMixed measures Decode of the corpus' ids.
func BenchmarkDecodeMixed(b *testing.B) {
	tok := qwen(b)
	text := mixedCorpus(b)
	ids := tok.Encode(text)
	b.SetBytes(int64(len(text)))
	m := startCPUMeter(b)
	for b.Loop() {
		_ = tok.Decode(ids)
	}
	m.stop(int64(len(text)))
}
