package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoadQwen measures parsing the 7 MB Qwen tokenizer.json from
// memory (file reading excluded).
func BenchmarkLoadQwen(b *testing.B) {
	tj, err := os.ReadFile(filepath.Join(qwenDir, "tokenizer.json"))
	if err != nil {
		b.Fatal(err)
	}
	cj, err := os.ReadFile(filepath.Join(qwenDir, "tokenizer_config.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tj)))
	b.ReportAllocs()
	m := startCPUMeter(b)
	for b.Loop() {
		if _, err := Load(tj, cj); err != nil {
			b.Fatal(err)
		}
	}
	m.stop(int64(len(tj)))
}
