// Command mkmodel writes a random-weight Qwen2/Llama model directory of any
// shape (real safetensors, config.json, generation_config.json and the Qwen
// tokenizer files), so the runtime can be benchmarked at full size without
// downloading a model:
//
//	go run ./tools/mkmodel -preset qwen1.5-0.5b -out DIR
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/runtime/safetensors"
	"github.com/airlock-dev/airlock/tools/mkmodel/modelgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkmodel:", err)
		os.Exit(1)
	}
}

func run() error {
	var names []string
	for n := range modelgen.Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	preset := flag.String("preset", "", "start from a named shape: "+strings.Join(names, ", "))
	out := flag.String("out", "", "output directory (required)")
	tok := flag.String("tokenizer", "testdata/qwen-tokenizer", "directory to copy tokenizer.json and tokenizer_config.json from (empty: none)")
	dtype := flag.String("dtype", "BF16", "weight dtype: BF16, F16 or F32")
	shards := flag.Int("shards", 1, "number of safetensors shards")
	seed := flag.Uint64("seed", 1, "random seed")
	arch := flag.String("arch", "", "Qwen2ForCausalLM or LlamaForCausalLM (default: the preset's)")
	hidden := flag.Int("hidden", 0, "hidden size (overrides the preset)")
	inter := flag.Int("intermediate", 0, "MLP intermediate size")
	layers := flag.Int("layers", 0, "number of layers")
	heads := flag.Int("heads", 0, "attention heads")
	kvHeads := flag.Int("kv-heads", 0, "key/value heads")
	vocab := flag.Int("vocab", 0, "vocabulary size")
	untied := flag.Bool("untied", false, "write a separate lm_head.weight")
	flag.Parse()
	if *out == "" {
		flag.Usage()
		return fmt.Errorf("-out is required")
	}
	spec := modelgen.Presets["tiny"]
	if *preset != "" {
		p, ok := modelgen.Presets[*preset]
		if !ok {
			return fmt.Errorf("unknown preset %q (have %s)", *preset, strings.Join(names, ", "))
		}
		spec = p
	}
	for _, o := range []struct {
		dst *int
		v   int
	}{{&spec.Hidden, *hidden}, {&spec.Intermediate, *inter}, {&spec.Layers, *layers},
		{&spec.Heads, *heads}, {&spec.KVHeads, *kvHeads}, {&spec.Vocab, *vocab}} {
		if o.v > 0 {
			*o.dst = o.v
		}
	}
	if *arch != "" {
		spec.Architecture = *arch
	}
	if *untied {
		spec.Tied = false
	}
	spec.DType = safetensors.DType(strings.ToUpper(*dtype))
	if spec.DType.Size() == 0 {
		return fmt.Errorf("unsupported dtype %q", *dtype)
	}
	spec.Shards, spec.Seed, spec.TokenizerDir = *shards, *seed, *tok
	bar := progress.New(os.Stderr, "write weights", spec.WeightBytes())
	err := modelgen.Write(*out, spec, func(n int64) { bar.Add(n) })
	bar.Finish(err)
	return err
}
