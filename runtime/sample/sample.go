// Package sample picks the next token from a logit vector: greedy argmax,
// or temperature sampling with top-k, top-p (nucleus) and a repetition
// penalty, in the order Hugging Face transformers applies them, drawing from
// a seeded generator so the same seed reproduces the same tokens.
package sample

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Params are the sampling settings.
type Params struct {
	Temperature       float32 // ≤ 0 means greedy
	TopK              int     // ≤ 0 means no top-k cut
	TopP              float32 // ≤ 0 or ≥ 1 means no nucleus cut
	RepetitionPenalty float32 // ≤ 0 or 1 means none
}

// Greedy reports whether p always picks the most likely token.
func (p Params) Greedy() bool { return p.Temperature <= 0 }

// tailCut bounds the nucleus search without top-k: tokens whose scaled
// logit is more than 2·tailCut below the best carry under e^-60 of its
// probability each, a negligible share of any nucleus.
const tailCut = 30

// Sampler selects tokens for one sequence. It is not safe for concurrent use.
type Sampler struct {
	p    Params
	rng  *rand.Rand
	seen []bool // ids already in the sequence (repetition penalty)
	ids  []int  // the distinct ids of seen
	cand []candidate
	exp  []float64 // scratch: exp(scaled logit − max) per token
}

type candidate struct {
	id int
	v  float64
}

// New returns a Sampler for params seeded with seed.
func New(p Params, seed uint64) *Sampler {
	return &Sampler{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Observe records that id is part of the sequence (prompt or generated) for
// the repetition penalty.
func (s *Sampler) Observe(id int) {
	if s.p.RepetitionPenalty <= 0 || s.p.RepetitionPenalty == 1 || id < 0 {
		return
	}
	if id >= len(s.seen) {
		grown := make([]bool, max(id+1, 2*len(s.seen)))
		copy(grown, s.seen)
		s.seen = grown
	}
	if !s.seen[id] {
		s.seen[id] = true
		s.ids = append(s.ids, id)
	}
}

// Next picks the next token. It applies the repetition penalty to logits in
// place.
func (s *Sampler) Next(logits []float32) int {
	if pen := s.p.RepetitionPenalty; pen > 0 && pen != 1 {
		for _, id := range s.ids {
			if id >= len(logits) {
				continue
			}
			if logits[id] < 0 {
				logits[id] *= pen
			} else {
				logits[id] /= pen
			}
		}
	}
	if s.p.Greedy() {
		return Argmax(logits)
	}
	inv := 1 / float64(s.p.Temperature)
	maxV := float64(logits[Argmax(logits)]) * inv
	nucleus := s.p.TopP > 0 && s.p.TopP < 1
	s.cand = s.cand[:0]
	var total float64 // the softmax normalizer of the candidates
	switch {
	case s.p.TopK > 0:
		for id, l := range logits {
			s.cand = append(s.cand, candidate{id, float64(l) * inv})
		}
		if k := s.p.TopK; k < len(s.cand) {
			topK(s.cand, k)
			s.cand = s.cand[:k]
		}
		for i := range s.cand {
			total += math.Exp(s.cand[i].v - maxV)
		}
	case nucleus:
		if cap(s.exp) < len(logits) {
			s.exp = make([]float64, len(logits))
		}
		e := s.exp[:len(logits)]
		for i, l := range logits {
			e[i] = math.Exp(float64(l)*inv - maxV)
			total += e[i]
		}
		// The nucleus is a prefix of the tokens by probability, so it lies
		// inside the set above some threshold: widen the threshold until
		// that set holds TopP of the mass, then sort only that set.
		for d := 1.0; ; d *= 2 {
			s.cand = s.cand[:0]
			var mass float64
			th := math.Exp(-d)
			for id, x := range e {
				if x >= th {
					s.cand = append(s.cand, candidate{id, x})
					mass += x
				}
			}
			if mass >= float64(s.p.TopP)*total || d > 2*tailCut {
				break
			}
		}
		for i := range s.cand { // back to the log domain for the shared tail
			s.cand[i].v = math.Log(s.cand[i].v)
		}
	default:
		for _, l := range logits {
			total += math.Exp(float64(l)*inv - maxV)
		}
		u := s.rng.Float64() * total
		for id, l := range logits {
			u -= math.Exp(float64(l)*inv - maxV)
			if u < 0 {
				return id
			}
		}
		return Argmax(logits)
	}
	sort.Slice(s.cand, func(i, j int) bool {
		if s.cand[i].v != s.cand[j].v {
			return s.cand[i].v > s.cand[j].v
		}
		return s.cand[i].id < s.cand[j].id
	})
	for i := range s.cand {
		s.cand[i].v = math.Exp(s.cand[i].v - maxV)
	}
	if nucleus {
		// Keep the smallest prefix whose mass reaches TopP (at least one).
		var acc float64
		for i := range s.cand {
			acc += s.cand[i].v / total
			if acc >= float64(s.p.TopP) {
				s.cand = s.cand[:i+1]
				break
			}
		}
	}
	var sum float64
	for _, c := range s.cand {
		sum += c.v
	}
	u := s.rng.Float64() * sum
	for _, c := range s.cand {
		u -= c.v
		if u < 0 {
			return c.id
		}
	}
	return s.cand[len(s.cand)-1].id
}

// topK moves the k largest candidates to the front (in any order).
func topK(c []candidate, k int) {
	lo, hi := 0, len(c)-1
	for lo < hi {
		p := c[(lo+hi)/2].v
		i, j := lo, hi
		for i <= j {
			for c[i].v > p {
				i++
			}
			for c[j].v < p {
				j--
			}
			if i <= j {
				c[i], c[j] = c[j], c[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}

// Argmax returns the index of the largest value (the first on ties).
func Argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// LogSoftmax returns log(softmax(v)[id]) computed in float64.
func LogSoftmax(v []float32, id int) float64 {
	return float64(v[id]) - LogSumExp(v)
}

// LogSumExp returns log(Σ exp(v[i])) computed stably in float64: the
// normalizer shared by every LogSoftmax over the same logits.
func LogSumExp(v []float32) float64 {
	maxV := float64(v[Argmax(v)])
	var sum float64
	for _, x := range v {
		sum += math.Exp(float64(x) - maxV)
	}
	return maxV + math.Log(sum)
}
