package kernels

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// qwenLayer lists the [rows, cols] of one Qwen1.5-0.5B decoder layer's
// projections: q, k, v, o, gate, up, down.
var qwenLayer = [][2]int{{1024, 1024}, {1024, 1024}, {1024, 1024}, {1024, 1024}, {2816, 1024}, {2816, 1024}, {1024, 2816}}

const (
	qwenLayers = 24
	qwenVocab  = 151936
	qwenHidden = 1024
)

// qwenWeights is every weight matrix of a Qwen1.5-0.5B-shaped model
// (≈ 928 MB of bf16): the 24 layers' projections then the tied lm_head.
type qwenWeights struct {
	layers [][]uint16 // 24 × 7 matrices, in qwenLayer order
	head   []uint16
	bytes  int64
}

var (
	qwenOnce sync.Once
	qwenW    *qwenWeights
)

// loadQwenWeights allocates and fills the model-sized weights once per
// test binary. Values are small valid bf16 numbers; the content does not
// affect speed.
func loadQwenWeights() *qwenWeights {
	qwenOnce.Do(func() {
		m := &qwenWeights{}
		fill := func(n int) []uint16 {
			w := make([]uint16, n)
			Parallel(n, func(s, e int) {
				for i := s; i < e; i++ {
					w[i] = 0x3c00 | uint16(i*2654435761>>20)&0x7f | uint16(i&1)<<15
				}
			})
			m.bytes += int64(2 * n)
			return w
		}
		for l := 0; l < qwenLayers; l++ {
			for _, sh := range qwenLayer {
				m.layers = append(m.layers, fill(sh[0]*sh[1]))
			}
		}
		m.head = fill(qwenVocab * qwenHidden)
		qwenW = m
	})
	return qwenW
}

// BenchmarkDecodeModel runs the 169 matrix-vector products of one decoded
// token of Qwen1.5-0.5B (the weights, 928 MB, stream from memory each
// token) and reports tokens/s and weight GB/s. Each token is paired with
// a streaming-read pass over a 512 MiB buffer right after it, and
// frac_of_bw is the median over pairs of decode GB/s ÷ read GB/s (the
// decode bar is ≥ 0.6); pairing keeps the ratio fair when other processes
// load the machine unevenly.
func BenchmarkDecodeModel(b *testing.B) {
	m := loadQwenWeights()
	x := make([]float32, 2816)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	y := make([]float32, qwenVocab)
	step := func() {
		for l := 0; l < qwenLayers; l++ {
			for i, sh := range qwenLayer {
				MatVecBF16(y, m.layers[l*len(qwenLayer)+i], x, sh[0], sh[1])
			}
		}
		MatVecBF16(y, m.head, x, qwenVocab, qwenHidden)
	}
	buf, free := allocScratch((512 << 20) / 8)
	defer free()
	Parallel(len(buf), func(s, e int) {
		for i := s; i < e; i++ {
			buf[i] = uint64(i)
		}
	})
	step()
	var fracs, bws []float64
	var decodeTime time.Duration
	b.SetBytes(m.bytes)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		step()
		el := time.Since(start)
		decodeTime += el
		b.StopTimer()
		bw := readRate(buf)
		b.StartTimer()
		bws = append(bws, bw)
		fracs = append(fracs, float64(m.bytes)/el.Seconds()/1e9/bw)
	}
	slices.Sort(fracs)
	slices.Sort(bws)
	sec := decodeTime.Seconds() / float64(b.N)
	b.ReportMetric(1/sec, "tok/s")
	b.ReportMetric(bws[len(bws)/2], "bw_GB/s")
	b.ReportMetric(fracs[len(fracs)/2], "frac_of_bw")
}

// BenchmarkPrefillModel runs the matrix products of a prompt through
// every layer of Qwen1.5-0.5B plus the lm_head for the last position and
// reports prompt tokens/s and the time to first token's matmul part.
func BenchmarkPrefillModel(b *testing.B) {
	m := loadQwenWeights()
	for _, tokens := range []int{30, 512} {
		x := make([]float32, tokens*2816)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		y := make([]float32, tokens*2816)
		logits := make([]float32, qwenVocab)
		b.Run(itoa(tokens), func(b *testing.B) {
			for b.Loop() {
				for l := 0; l < qwenLayers; l++ {
					for i, sh := range qwenLayer {
						MatMulBF16(y, m.layers[l*len(qwenLayer)+i], x, tokens, sh[0], sh[1])
					}
				}
				MatVecBF16(logits, m.head, x, qwenVocab, qwenHidden)
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(tokens)/sec, "tok/s")
			b.ReportMetric(sec*1000, "ms")
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return string(buf[i:])
}
