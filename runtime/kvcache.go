package runtime

// kvChunk is how many positions the KV cache grows by at a time.
const kvChunk = 256

// KVCache holds the rotated keys and the values of every processed position,
// per layer, as float32 rows of NumKVHeads×HeadDim. It belongs to one
// sequence and is not safe for concurrent use.
type KVCache struct {
	kvDim int
	n     int         // positions stored
	k, v  [][]float32 // per layer, capacity × kvDim
}

// NewKVCache returns an empty cache for m with room for capacity positions
// before it first grows.
func (m *Model) NewKVCache(capacity int) *KVCache {
	kvDim := m.cfg.NumKVHeads * m.cfg.HeadDim
	c := &KVCache{kvDim: kvDim, k: make([][]float32, m.cfg.NumLayers), v: make([][]float32, m.cfg.NumLayers)}
	c.reserve(capacity)
	return c
}

// Len returns the number of positions stored.
func (c *KVCache) Len() int { return c.n }

// capacity returns how many positions fit without growing.
func (c *KVCache) capacity() int {
	if len(c.k) == 0 || c.kvDim == 0 {
		return 0
	}
	return len(c.k[0]) / c.kvDim
}

// reserve makes room for n positions in total, growing in kvChunk steps.
func (c *KVCache) reserve(n int) {
	if n <= c.capacity() {
		return
	}
	n = (n + kvChunk - 1) / kvChunk * kvChunk
	for l := range c.k {
		k := make([]float32, n*c.kvDim)
		v := make([]float32, n*c.kvDim)
		copy(k, c.k[l][:c.n*c.kvDim])
		copy(v, c.v[l][:c.n*c.kvDim])
		c.k[l], c.v[l] = k, v
	}
}

// Truncate forgets every position from n on.
func (c *KVCache) Truncate(n int) {
	if n < c.n {
		c.n = n
	}
}

// Clone returns an independent copy with the same positions stored and room
// for extra more.
func (c *KVCache) Clone(extra int) *KVCache {
	d := &KVCache{kvDim: c.kvDim, k: make([][]float32, len(c.k)), v: make([][]float32, len(c.v))}
	d.reserve(c.n + extra)
	for l := range c.k {
		copy(d.k[l], c.k[l][:c.n*c.kvDim])
		copy(d.v[l], c.v[l][:c.n*c.kvDim])
	}
	d.n = c.n
	return d
}
