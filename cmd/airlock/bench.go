package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/airlock-dev/airlock/runtime"
)

func init() {
	register(&cli.Command{
		Name:      "bench",
		Usage:     "measure load time, prefill, decode, time to first token, peak RSS and memory bandwidth",
		ArgsUsage: "DIR",
		Description: "Loads the model in DIR and reports load_ms, prefill_64_tok_s, prefill_512_tok_s,\n" +
			"decode_tok_s (128 tokens), ttft_ms (30-token chat prompt), peak_rss_bytes, mem_bw_gb_s and\n" +
			"weight_bytes_per_token. Each figure is the median of --repeats runs.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			&cli.IntFlag{Name: "repeats", Value: 3, Usage: "runs per measurement (median reported)"},
			&cli.IntFlag{Name: "bandwidth-mib", Value: 512, Usage: "buffer size of the memory bandwidth measurement"},
			&cli.BoolFlag{Name: "heap", Usage: "read the weights into memory instead of memory-mapping them", EnvVars: []string{"AIRLOCK_HEAP_WEIGHTS"}},
			threadsFlag,
		},
		Action: runBench,
	})
}

func runBench(c *cli.Context) error {
	dir, err := modelDirArg(c)
	if err != nil {
		return err
	}
	m, err := loadModel(c, dir)
	if err != nil {
		return err
	}
	defer m.Close()
	logf := func(format string, args ...any) {
		if !c.Bool("json") {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		}
	}
	res, err := runtime.Bench(c.Context, m, runtime.BenchOptions{Repeats: c.Int("repeats"), BandwidthMiB: c.Int("bandwidth-mib"), Log: logf})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		return enc.Encode(res)
	}
	fmt.Printf("load            %8.0f ms\n", res.LoadMS)
	fmt.Printf("prefill 64      %8.1f tok/s\n", res.Prefill64TokS)
	fmt.Printf("prefill 512     %8.1f tok/s\n", res.Prefill512TokS)
	fmt.Printf("decode          %8.2f tok/s (%.0f%% of the %.1f tok/s bandwidth ceiling)\n",
		res.DecodeTokS, 100*res.DecodeTokS/res.CeilingTokS(), res.CeilingTokS())
	fmt.Printf("ttft            %8.1f ms\n", res.TTFTMS)
	fmt.Printf("peak RSS        %8.0f MB\n", float64(res.PeakRSSBytes)/1e6)
	fmt.Printf("memory bw       %8.1f GB/s\n", res.MemBWGBs)
	fmt.Printf("weights/token   %8.0f MB\n", float64(res.WeightBytesPerToken)/1e6)
	return nil
}
