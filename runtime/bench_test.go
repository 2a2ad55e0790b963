package runtime

import (
	"context"
	"os"
	"testing"
)

// benchModel loads the model named by AIRLOCK_BENCH_MODEL (for example one
// written by `go run ./tools/mkmodel -preset qwen1.5-0.5b -out DIR`), or the
// tiny test model.
func benchModel(b *testing.B) *Model {
	dir := os.Getenv("AIRLOCK_BENCH_MODEL")
	if dir == "" {
		return loadTiny(b)
	}
	m, err := Load(dir, LoadOptions{Heap: os.Getenv("AIRLOCK_HEAP_WEIGHTS") != ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkDecode measures one decode step after a 16-token prompt.
func BenchmarkDecode(b *testing.B) {
	m := benchModel(b)
	s := m.NewSession(16 + b.N + 1)
	ids := benchIDs(m, 16)
	if _, err := s.Append(context.Background(), ids); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.Len() >= m.maxCtx-1 {
			s.Reset()
		}
		if _, err := s.Append(context.Background(), ids[i%16:i%16+1]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkPrefill512 measures a 512-token prompt.
func BenchmarkPrefill512(b *testing.B) {
	m := benchModel(b)
	s := m.NewSession(512)
	ids := benchIDs(m, 512)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Reset()
		if _, err := s.Append(context.Background(), ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(512*b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkAttentionPrefill512 compares, in one run, the two attention
// loops for one layer of a 512-token prompt: reading the cache in place
// (short dot products per key) and on the transposed copy (long vectors).
func BenchmarkAttentionPrefill512(b *testing.B) {
	m := benchModel(b)
	const n = 512
	cache := m.NewKVCache(n)
	ws := m.newWorkspace(n)
	ws.ensure(m, n, n, logitsNone)
	x := uint32(1)
	rnd := func() float32 { x = x*1664525 + 1013904223; return float32(int32(x>>8)%2000) / 1000 }
	for i := range cache.k[0][:n*cache.kvDim] {
		cache.k[0][i], cache.v[0][i] = rnd(), rnd()
	}
	for i := range ws.q[:n*m.cfg.NumHeads*m.cfg.HeadDim] {
		ws.q[i] = rnd()
	}
	cache.n = n
	j := &ws.attn
	j.m, j.ws, j.cache, j.li, j.start, j.n = m, ws, cache, 0, 0, n
	b.Run("in-place", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			j.heads(0, m.cfg.NumHeads)
		}
	})
	b.Run("transposed", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			j.transposeKV(0, m.cfg.NumKVHeads)
			j.headsTransposed(0, m.cfg.NumHeads)
		}
	})
}
