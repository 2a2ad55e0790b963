package runtime

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/runtime/kernels"
	"github.com/airlock-dev/airlock/runtime/sample"
)

// BenchResult is what `airlock bench` reports; the JSON keys are a stable
// interface for tooling.
type BenchResult struct {
	LoadMS              float64 `json:"load_ms"`
	Prefill64TokS       float64 `json:"prefill_64_tok_s"`
	Prefill512TokS      float64 `json:"prefill_512_tok_s"`
	DecodeTokS          float64 `json:"decode_tok_s"`
	TTFTMS              float64 `json:"ttft_ms"`
	PeakRSSBytes        int64   `json:"peak_rss_bytes"`
	MemBWGBs            float64 `json:"mem_bw_gb_s"`
	WeightBytesPerToken int64   `json:"weight_bytes_per_token"`
}

// CeilingTokS is the decode rate memory bandwidth allows: bandwidth divided
// by the weight bytes one token reads.
func (r BenchResult) CeilingTokS() float64 {
	if r.WeightBytesPerToken == 0 {
		return 0
	}
	return r.MemBWGBs * 1e9 / float64(r.WeightBytesPerToken)
}

// BenchOptions controls Bench.
type BenchOptions struct {
	Repeats      int // runs per measurement; the median is reported (default 3)
	DecodeTokens int // tokens per decode run (default 128)
	BandwidthMiB int // buffer for the bandwidth measurement (default 512)
	Log          func(format string, args ...any)
}

// Bench measures prefill, decode and time to first token on m, then peak
// RSS, then memory bandwidth (last, so its buffer does not count in the
// RSS). Every figure is the median of opts.Repeats runs.
func Bench(ctx context.Context, m *Model, opts BenchOptions) (BenchResult, error) {
	if opts.Repeats <= 0 {
		opts.Repeats = 3
	}
	if opts.DecodeTokens <= 0 {
		opts.DecodeTokens = 128
	}
	if opts.BandwidthMiB <= 0 {
		opts.BandwidthMiB = 512
	}
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res := BenchResult{LoadMS: float64(m.LoadDuration.Microseconds()) / 1000, WeightBytesPerToken: m.info.WeightBytes}
	logf("load: %.0f ms (weights %.0f ms, tokenizer and the rest %.0f ms)", res.LoadMS,
		float64(m.WeightsDuration.Microseconds())/1000, float64((m.LoadDuration-m.WeightsDuration).Microseconds())/1000)
	ids := benchIDs(m, 512+opts.DecodeTokens)
	sess := m.NewSession(512 + opts.DecodeTokens + 1)
	// One short warm-up pass sizes the buffers and touches the code paths.
	if _, err := sess.Append(ctx, ids[:8]); err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	for _, n := range []int{64, 512} {
		var rates, cpuRates []float64
		for r := 0; r < opts.Repeats; r++ {
			sess.Reset()
			start, cpu0 := time.Now(), cpuSeconds()
			if _, err := sess.Append(ctx, ids[:n]); err != nil {
				return res, fmt.Errorf("bench: prefill %d: %w", n, err)
			}
			rates = append(rates, float64(n)/time.Since(start).Seconds())
			cpuRates = append(cpuRates, float64(n)/(cpuSeconds()-cpu0))
		}
		med := median(rates)
		logf("prefill %d tokens: %.1f tok/s (runs %s); %.1f tokens per CPU-second (runs %s)",
			n, med, fmtRates(rates), median(cpuRates), fmtRates(cpuRates))
		if n == 64 {
			res.Prefill64TokS = med
		} else {
			res.Prefill512TokS = med
		}
	}
	var rates, cpuRates []float64
	for r := 0; r < opts.Repeats; r++ {
		sess.Reset()
		logits, err := sess.Append(ctx, ids[:16])
		if err != nil {
			return res, fmt.Errorf("bench: %w", err)
		}
		start, cpu0 := time.Now(), cpuSeconds()
		for i := 0; i < opts.DecodeTokens; i++ {
			next := sample.Argmax(logits)
			if logits, err = sess.Append(ctx, []int{next}); err != nil {
				return res, fmt.Errorf("bench: decode: %w", err)
			}
		}
		rates = append(rates, float64(opts.DecodeTokens)/time.Since(start).Seconds())
		cpuRates = append(cpuRates, float64(opts.DecodeTokens)/(cpuSeconds()-cpu0))
	}
	res.DecodeTokS = median(rates)
	logf("decode %d tokens: %.2f tok/s (runs %s); %.2f tokens per CPU-second (runs %s)",
		opts.DecodeTokens, res.DecodeTokS, fmtRates(rates), median(cpuRates), fmtRates(cpuRates))

	prompt, err := benchChat(m, 30)
	if err != nil {
		return res, err
	}
	var ttfts, ttftCPU []float64
	for r := 0; r < opts.Repeats; r++ {
		start, cpu0 := time.Now(), cpuSeconds()
		ids := m.Encode(prompt)
		if ids == nil {
			ids = benchIDs(m, 30)
		}
		s := m.acquireSession(len(ids) + 1)
		logits, err := s.Append(ctx, ids)
		if err != nil {
			return res, fmt.Errorf("bench: ttft: %w", err)
		}
		_ = sample.Argmax(logits)
		ttfts = append(ttfts, float64(time.Since(start).Microseconds())/1000)
		ttftCPU = append(ttftCPU, (cpuSeconds()-cpu0)*1000)
		m.releaseSession(s)
	}
	res.TTFTMS = median(ttfts)
	logf("time to first token (%d-token chat prompt): %.1f ms (runs %s); %.1f CPU-ms (runs %s)",
		len(m.Encode(prompt)), res.TTFTMS, fmtRates(ttfts), median(ttftCPU), fmtRates(ttftCPU))
	res.PeakRSSBytes = peakRSS()
	res.MemBWGBs = kernels.MeasureBandwidth(opts.BandwidthMiB<<20, 2*opts.Repeats+1)
	logf("memory bandwidth: %.1f GB/s", res.MemBWGBs)
	return res, nil
}

// benchIDs returns n deterministic ordinary token ids.
func benchIDs(m *Model, n int) []int {
	limit := m.cfg.VocabSize
	if limit > 151643 {
		limit = 151643 // below Qwen's special tokens
	}
	ids := make([]int, n)
	x := uint64(12345)
	for i := range ids {
		x = x*6364136223846793005 + 1442695040888963407
		ids[i] = int((x >> 33) % uint64(limit))
	}
	return ids
}

// benchChat renders a one-message chat whose prompt is about n tokens.
func benchChat(m *Model, n int) (string, error) {
	if !m.HasTokenizer() {
		return "", nil
	}
	words := strings.Fields("Please explain in a few words why an offline model needs a signed bundle and how its checksums are verified before serving on the intranet today")
	best := ""
	for k := 1; k <= len(words); k++ {
		p, err := m.RenderChat([]Message{{Role: "user", Content: strings.Join(words[:k], " ")}}, true)
		if err != nil {
			return "", fmt.Errorf("bench: %w", err)
		}
		best = p
		if len(m.Encode(p)) >= n {
			break
		}
	}
	return best, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRates(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, " ")
}
