package train

import "github.com/yai-dev/yai/mlx"

// The frozen prefix: with adapters on the last N of L blocks, the embedding and the first
// L−N blocks see the same tokens every epoch and produce the same hidden states. A prefix
// cache keeps, per batch (Batch.Key names its rows), the hidden states entering the first
// adapted block, so later epochs start the forward pass there. A batch is cached by the step
// that first runs it, with the same compiled ops as an uncached step, so a cached run's
// losses are bit-identical to an uncached one; a resumed run starts with an empty cache and
// fills it again the same way.

// prefixMode is how a compiled step uses the prefix cache.
type prefixMode int

const (
	prefixNone prefixMode = iota // compute the prefix, keep nothing
	prefixFill                   // compute the prefix and return it (last output)
	prefixUse                    // take the prefix as the last input
)

// prefixCache holds the cached hidden states, evaluated and owned, within a byte bound.
type prefixCache struct {
	limit   int64
	used    int64
	entries map[string]*mlx.Array
}

func newPrefixCache(limit int64) *prefixCache {
	return &prefixCache{limit: limit, entries: map[string]*mlx.Array{}}
}

// mode says how the step for a batch with this key uses the cache.
func (c *prefixCache) mode(key string, bytes int64) prefixMode {
	if c == nil || key == "" {
		return prefixNone
	}
	if _, ok := c.entries[key]; ok {
		return prefixUse
	}
	if c.used+bytes <= c.limit {
		return prefixFill
	}
	return prefixNone
}

// put keeps h (evaluated, detached) under key.
func (c *prefixCache) put(key string, h *mlx.Array) {
	c.entries[key] = h
	c.used += int64(h.Nbytes())
}

// Bytes is the memory the cache holds.
func (c *prefixCache) Bytes() int64 {
	if c == nil {
		return 0
	}
	return c.used
}

func (c *prefixCache) free() {
	if c == nil {
		return
	}
	for k, a := range c.entries {
		a.Free()
		delete(c.entries, k)
	}
	c.used = 0
}

// prefixBytes is the size of the hidden states entering the first adapted block for b,
// whose model inputs are tokens: (rows, input columns, hidden).
func (t *Trainer) prefixBytes(b Batch, tokens *mlx.Array) int64 {
	rows, cols := tokens.Dim(0), tokens.Dim(1)
	if b.Segments == nil {
		cols-- // plain rows: the inputs drop the last token
	}
	return int64(rows) * int64(cols) * int64(t.model.Config.HiddenSize) * int64(t.model.Embedding.OutputDtype().Size())
}

// PrefixCacheBytes is the memory the prefix cache holds (0 when off).
func (t *Trainer) PrefixCacheBytes() int64 { return t.prefix.Bytes() }
