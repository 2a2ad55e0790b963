package modelgen

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/airlock-dev/airlock/runtime/safetensors"
)

func TestWriteIsDeterministicAndScaled(t *testing.T) {
	spec := Presets["tiny"]
	spec.Seed = 5
	a, b := t.TempDir(), t.TempDir()
	var written int64
	if err := Write(a, spec, func(n int64) { written += n }); err != nil {
		t.Fatal(err)
	}
	if err := Write(b, spec, nil); err != nil {
		t.Fatal(err)
	}
	fa, _ := os.ReadFile(filepath.Join(a, safetensors.SingleFile))
	fb, _ := os.ReadFile(filepath.Join(b, safetensors.SingleFile))
	if !bytes.Equal(fa, fb) {
		t.Fatal("same seed wrote different weights")
	}
	if written != spec.WeightBytes() {
		t.Fatalf("progress counted %d bytes, spec says %d", written, spec.WeightBytes())
	}
	f, err := safetensors.Parse(fa)
	if err != nil {
		t.Fatal(err)
	}
	// Linear weights have standard deviation 1/sqrt(fan_in); norms mean 1.
	w, _ := f.Tensor("model.layers.0.mlp.down_proj.weight")
	mean, std := stats(w.Float32s())
	if want := 1 / math.Sqrt(176); math.Abs(mean) > 0.01 || math.Abs(std-want)/want > 0.05 {
		t.Fatalf("down_proj mean %.4f std %.4f, want 0 and %.4f", mean, std, want)
	}
	n, _ := f.Tensor("model.norm.weight")
	if mean, _ := stats(n.Float32s()); math.Abs(mean-1) > 0.05 {
		t.Fatalf("norm mean %.3f", mean)
	}
	if _, ok := f.Tensor("lm_head.weight"); ok {
		t.Fatal("tied preset wrote lm_head.weight")
	}
}

func TestPresetShape(t *testing.T) {
	s := Presets["qwen1.5-0.5b"]
	// 464 M weights in BF16: what a decode step of Qwen1.5-0.5B-Chat reads.
	if got := s.WeightBytes(); got != 927975424 {
		t.Fatalf("qwen1.5-0.5b weight bytes %d", got)
	}
}

func stats(v []float32) (mean, std float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}
