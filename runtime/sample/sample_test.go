package sample

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func randomLogits(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * 3)
	}
	return v
}

func TestGreedyIsArgmax(t *testing.T) {
	l := randomLogits(1000, 1)
	want := Argmax(l)
	if got := New(Params{}, 7).Next(append([]float32(nil), l...)); got != want {
		t.Fatalf("greedy picked %d, want %d", got, want)
	}
	if got := New(Params{Temperature: 1, TopK: 1}, 7).Next(append([]float32(nil), l...)); got != want {
		t.Fatalf("top-k 1 picked %d, want %d", got, want)
	}
	if got := New(Params{Temperature: 1, TopP: 1e-6}, 7).Next(append([]float32(nil), l...)); got != want {
		t.Fatalf("tiny top-p picked %d, want %d", got, want)
	}
}

func TestSeedReproducible(t *testing.T) {
	l := randomLogits(5000, 2)
	p := Params{Temperature: 0.9, TopK: 50, TopP: 0.9, RepetitionPenalty: 1.1}
	run := func(seed uint64) []int {
		s := New(p, seed)
		var out []int
		for i := 0; i < 50; i++ {
			id := s.Next(append([]float32(nil), l...))
			s.Observe(id)
			out = append(out, id)
		}
		return out
	}
	a, b, c := run(42), run(42), run(43)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed diverged at %d: %v vs %v", i, a, b)
		}
	}
	same := true
	for i := range a {
		same = same && a[i] == c[i]
	}
	if same {
		t.Fatalf("different seeds gave identical sequences %v", a)
	}
}

func TestTopKRestricts(t *testing.T) {
	l := randomLogits(2000, 3)
	idx := make([]int, len(l))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return l[idx[i]] > l[idx[j]] })
	allowed := map[int]bool{}
	for _, id := range idx[:5] {
		allowed[id] = true
	}
	s := New(Params{Temperature: 5, TopK: 5}, 9)
	hit := map[int]bool{}
	for i := 0; i < 2000; i++ {
		id := s.Next(append([]float32(nil), l...))
		if !allowed[id] {
			t.Fatalf("top-k 5 picked %d outside the 5 best", id)
		}
		hit[id] = true
	}
	if len(hit) != 5 {
		t.Fatalf("high temperature top-k 5 reached only %d tokens", len(hit))
	}
}

func TestTopKSelectMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(300)
		c := make([]candidate, n)
		for i := range c {
			c[i] = candidate{i, float64(r.IntN(20))} // many ties
		}
		k := 1 + r.IntN(n)
		vals := make([]float64, n)
		for i := range c {
			vals[i] = c[i].v
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(vals)))
		topK(c, k)
		got := make([]float64, k)
		for i := range got {
			got[i] = c[i].v
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(got)))
		for i := range got {
			if got[i] != vals[i] {
				t.Fatalf("n=%d k=%d: top-k values %v, want %v", n, k, got, vals[:k])
			}
		}
	}
}

func TestDistribution(t *testing.T) {
	// Probabilities 1/7, 2/7, 4/7 at temperature 1.
	l := []float32{0, float32(math.Ln2), float32(2 * math.Ln2)}
	s := New(Params{Temperature: 1}, 11)
	const n = 70000
	var count [3]int
	for i := 0; i < n; i++ {
		count[s.Next(append([]float32(nil), l...))]++
	}
	for i, want := range []float64{1. / 7, 2. / 7, 4. / 7} {
		got := float64(count[i]) / n
		if math.Abs(got-want) > 0.01 {
			t.Errorf("token %d frequency %.4f, want %.4f", i, got, want)
		}
	}
	// Temperature 0.5 squares the odds: 1/21, 4/21, 16/21.
	s = New(Params{Temperature: 0.5}, 12)
	count = [3]int{}
	for i := 0; i < n; i++ {
		count[s.Next(append([]float32(nil), l...))]++
	}
	for i, want := range []float64{1. / 21, 4. / 21, 16. / 21} {
		if got := float64(count[i]) / n; math.Abs(got-want) > 0.01 {
			t.Errorf("T=0.5 token %d frequency %.4f, want %.4f", i, got, want)
		}
	}
}

func TestTopPKeepsNucleus(t *testing.T) {
	// Probabilities 4/7, 2/7, 1/7: top-p 0.8 keeps the first two only.
	l := []float32{float32(2 * math.Ln2), float32(math.Ln2), 0}
	s := New(Params{Temperature: 1, TopP: 0.8}, 5)
	var count [3]int
	for i := 0; i < 30000; i++ {
		count[s.Next(append([]float32(nil), l...))]++
	}
	if count[2] != 0 {
		t.Fatalf("top-p 0.8 sampled the 1/7 tail %d times", count[2])
	}
	if got := float64(count[0]) / 30000; math.Abs(got-2./3) > 0.015 {
		t.Fatalf("renormalized frequency %.4f, want 0.6667", got)
	}
}

func TestRepetitionPenalty(t *testing.T) {
	l := []float32{2.0, 1.9, -1}
	s := New(Params{RepetitionPenalty: 1.1}, 1)
	s.Observe(0)
	s.Observe(2)
	got := append([]float32(nil), l...)
	if id := s.Next(got); id != 1 {
		t.Fatalf("penalized greedy picked %d, want 1", id)
	}
	if math.Abs(float64(got[0])-2.0/1.1) > 1e-6 || math.Abs(float64(got[2])+1.1) > 1e-6 || got[1] != 1.9 {
		t.Fatalf("penalized logits %v", got)
	}
}

func TestLogSoftmax(t *testing.T) {
	l := []float32{1, 2, 3}
	var sum float64
	for i := range l {
		sum += math.Exp(LogSoftmax(l, i))
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Fatalf("probabilities sum to %v", sum)
	}
	want := 3 - math.Log(math.E+math.E*math.E+math.E*math.E*math.E)
	if math.Abs(LogSoftmax(l, 2)-want) > 1e-12 {
		t.Fatalf("log-softmax %v, want %v", LogSoftmax(l, 2), want)
	}
}

func BenchmarkNextTopKTopP(b *testing.B) {
	l := randomLogits(151936, 5)
	s := New(Params{Temperature: 0.7, TopK: 20, TopP: 0.8, RepetitionPenalty: 1.1}, 1)
	buf := make([]float32, len(l))
	for i := 0; i < b.N; i++ {
		copy(buf, l)
		s.Next(buf)
	}
}

func BenchmarkNextTopPOnly(b *testing.B) {
	l := randomLogits(151936, 5)
	s := New(Params{Temperature: 0.7, TopP: 0.8}, 1)
	buf := make([]float32, len(l))
	for i := 0; i < b.N; i++ {
		copy(buf, l)
		s.Next(buf)
	}
}
