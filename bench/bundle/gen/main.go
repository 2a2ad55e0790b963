// Command gen writes a model directory of weight-like data for the bundle
// benchmark: safetensors shards holding bf16 values drawn from N(0, 0.02)
// (the byte statistics of trained weights), plus config and tokenizer JSON.
//
//	go run ./bench/bundle/gen -out DIR -size 2GiB
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	out := flag.String("out", "", "directory to create")
	size := flag.String("size", "2GiB", "total weight bytes (suffix KiB, MiB, GiB)")
	shard := flag.String("shard", "512MiB", "bytes per safetensors shard")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gen: -out DIR is required")
		os.Exit(2)
	}
	total, err := parseSize(*size)
	if err == nil {
		var per int64
		per, err = parseSize(*shard)
		if err == nil {
			err = generate(*out, total, per, *seed)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	return int64(n * float64(mult)), nil
}

func generate(dir string, total, per int64, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 2))
	table := make([]uint16, 1<<16)
	for i := range table {
		table[i] = uint16(math.Float32bits(float32(r.NormFloat64()*0.02)) >> 16)
	}
	shards := int((total + per - 1) / per)
	for s := 0; s < shards; s++ {
		n := min(per, total-int64(s)*per) &^ 1
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		if err := writeShard(filepath.Join(dir, name), n, table, r); err != nil {
			return err
		}
	}
	files := map[string]any{
		"config.json":            map[string]any{"architectures": []string{"Qwen2ForCausalLM"}, "hidden_size": 1024, "torch_dtype": "bfloat16"},
		"generation_config.json": map[string]any{"do_sample": true, "top_p": 0.8},
		"tokenizer_config.json":  map[string]any{"model_max_length": 32768},
	}
	vocab := map[string]int{}
	for i := 0; i < 150000; i++ {
		vocab[fmt.Sprintf("tok%06x", r.Uint32())] = i
	}
	files["tokenizer.json"] = map[string]any{"model": map[string]any{"type": "BPE", "vocab": vocab}}
	for name, v := range files {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeShard(path string, n int64, table []uint16, r *rand.Rand) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	header, _ := json.Marshal(map[string]any{
		"weight": map[string]any{"dtype": "BF16", "shape": []int64{n / 2}, "data_offsets": []int64{0, n}},
	})
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	w.Write(lenBuf[:])
	w.Write(header)
	var buf [8]byte
	for i := int64(0); i < n; i += 8 {
		x := r.Uint64()
		for k := 0; k < 8; k += 2 {
			binary.LittleEndian.PutUint16(buf[k:], table[uint16(x>>(8*k))])
		}
		w.Write(buf[:min(8, n-i)])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
