package model

import "github.com/yai-dev/yai/mlx"

// Cache keeps one block's keys and values between forward passes, so that a pass computes
// only its new positions: they start at Offset and attend to the positions cached before
// them (within its window, for a sliding-window block). It is mlx-lm's cache interface
// (mlx_lm/models/cache.py); KVCache and RotatingKVCache are its classes of those names.
// A nil Cache means none: the pass sees only its own positions, as in training.
type Cache interface {
	// Offset is the number of positions cached, which is the position of the next one.
	Offset() int
	// Update appends keys and values (B, kv heads, L, D), already rotated, and returns the
	// keys and values of every cached position, owned by the caller's scope.
	Update(keys, values *mlx.Array) (allKeys, allValues *mlx.Array)
	// State is the arrays the cache holds, to evaluate between passes.
	State() []*mlx.Array
	// Free releases what the cache holds and empties it.
	Free()
}

// Caches are a model's caches, one per block (see Model.NewCaches).
type Caches []Cache

// NewCaches returns an empty cache for every block, as mlx-lm's make_cache: a KVCache, or
// for a sliding-window block a RotatingKVCache of the window's size, which keeps memory
// bounded and the arithmetic identical to mlx-lm's.
func (m *Model) NewCaches() Caches {
	cs := make(Caches, len(m.Layers))
	for i, b := range m.Layers {
		if w := b.Attn.Window; w > 0 {
			cs[i] = &RotatingKVCache{MaxSize: w}
		} else {
			cs[i] = &KVCache{}
		}
	}
	return cs
}

// State is every cache's arrays.
func (cs Caches) State() []*mlx.Array {
	var out []*mlx.Array
	for _, c := range cs {
		out = append(out, c.State()...)
	}
	return out
}

// Free frees every cache.
func (cs Caches) Free() {
	for _, c := range cs {
		c.Free()
	}
}

// CacheStep is how many positions a KVCache grows by at a time (mlx-lm's KVCache.step):
// growing in blocks keeps the arrays' shapes, and so memory, unchanged between blocks.
const CacheStep = 256

// KVCache holds one block's rotated keys and values, (B, kv heads, capacity, head dim),
// filled up to its offset. It is mlx-lm's KVCache. The zero value is an empty cache; its
// arrays are detached from every scope and live until Free.
type KVCache struct {
	keys, values *mlx.Array
	offset       int
}

func (c *KVCache) Offset() int { return c.offset }

// Update writes keys and values (B, kv heads, L, D) at the current offset and returns the
// filled part of the cache, owned by the caller's scope.
func (c *KVCache) Update(k, v *mlx.Array) (keys, values *mlx.Array) {
	prev := c.offset
	l := k.Dim(2)
	if c.keys == nil || prev+l > c.keys.Dim(2) {
		c.grow(k, v, l)
	}
	c.offset += l
	c.keys = c.replace(c.keys, k, prev)
	c.values = c.replace(c.values, v, prev)
	return mlx.SliceAxis(c.keys, 2, 0, c.offset), mlx.SliceAxis(c.values, 2, 0, c.offset)
}

// grow adds enough CacheStep blocks of zeros for l more positions, as mlx-lm does
// (trimming a partly used last block first).
func (c *KVCache) grow(k, v *mlx.Array, l int) {
	n := (CacheStep + l - 1) / CacheStep * CacheStep
	ks, vs := k.Shape(), v.Shape()
	newK := mlx.Zeros([]int{ks[0], ks[1], n, ks[3]}, k.Dtype())
	newV := mlx.Zeros([]int{vs[0], vs[1], n, vs[3]}, v.Dtype())
	if c.keys == nil {
		mlx.Detach(newK, newV)
		c.keys, c.values = newK, newV
		return
	}
	if c.offset%CacheStep != 0 {
		c.keys = swap(c.keys, mlx.SliceAxis(c.keys, 2, 0, c.offset))
		c.values = swap(c.values, mlx.SliceAxis(c.values, 2, 0, c.offset))
	}
	c.keys = swap(c.keys, mlx.Concatenate([]*mlx.Array{c.keys, newK}, 2))
	c.values = swap(c.values, mlx.Concatenate([]*mlx.Array{c.values, newV}, 2))
	mlx.Free(newK, newV)
}

// replace writes update into dst at position at along the sequence axis.
func (c *KVCache) replace(dst, update *mlx.Array, at int) *mlx.Array {
	shape := dst.Shape()
	start := []int{0, 0, at, 0}
	stop := []int{shape[0], shape[1], at + update.Dim(2), shape[3]}
	return swap(dst, mlx.SliceUpdate(dst, update, start, stop, nil))
}

// swap frees old and returns next, detached: the cache owns it. Freeing the handle does not
// free the buffer while next's graph still reads it; once evaluated, MLX reuses it in place.
func swap(old, next *mlx.Array) *mlx.Array {
	old.Free()
	mlx.Detach(next)
	return next
}

// State is the whole buffers, filled or not (nil before the first Update).
func (c *KVCache) State() []*mlx.Array {
	if c.keys == nil {
		return nil
	}
	return []*mlx.Array{c.keys, c.values}
}

func (c *KVCache) Free() {
	mlx.Free(c.keys, c.values)
	c.keys, c.values, c.offset = nil, nil, 0
}

// RotatingKVCache keeps only the last MaxSize positions of a sliding-window block: mlx-lm's
// RotatingKVCache (with keep = 0), step for step, so that the keys reach attention in the
// same order as there. Several positions at once are appended after the cache is put in
// temporal order and trimmed to MaxSize−1 (each new one still sees a whole window); one at
// a time, they overwrite the oldest slot. The zero value with MaxSize set is empty.
type RotatingKVCache struct {
	MaxSize      int
	keys, values *mlx.Array
	offset, idx  int
}

func (c *RotatingKVCache) Offset() int { return c.offset }

// Update appends keys and values (B, kv heads, L, D) and returns what attention reads,
// owned by the caller's scope.
func (c *RotatingKVCache) Update(k, v *mlx.Array) (keys, values *mlx.Array) {
	if k.Dim(2) == 1 {
		return c.updateInPlace(k, v)
	}
	return c.updateConcat(k, v)
}

func (c *RotatingKVCache) updateConcat(k, v *mlx.Array) (keys, values *mlx.Array) {
	if c.keys == nil {
		c.keys, c.values = swap(nil, k.Clone()), swap(nil, v.Clone())
	} else {
		c.keys, c.values = swap(c.keys, c.temporalOrder(c.keys)), swap(c.values, c.temporalOrder(c.values))
		c.idx = c.keys.Dim(2)
		trim := c.idx - c.MaxSize + 1
		c.keys, c.values = swap(c.keys, trimmed(c.keys, trim, k)), swap(c.values, trimmed(c.values, trim, v))
	}
	c.offset += k.Dim(2)
	c.idx = c.keys.Dim(2)
	return c.keys.Clone(), c.values.Clone()
}

func (c *RotatingKVCache) updateInPlace(k, v *mlx.Array) (keys, values *mlx.Array) {
	prev := c.offset
	if c.keys == nil || (prev >= c.keys.Dim(2) && c.keys.Dim(2) < c.MaxSize) {
		n := min(CacheStep, c.MaxSize-prev)
		ks, vs := k.Shape(), v.Shape()
		newK := mlx.Zeros([]int{ks[0], ks[1], n, ks[3]}, k.Dtype())
		newV := mlx.Zeros([]int{vs[0], vs[1], n, vs[3]}, v.Dtype())
		if c.keys == nil {
			c.keys, c.values = swap(nil, newK), swap(nil, newV)
		} else {
			c.keys = swap(c.keys, mlx.Concatenate([]*mlx.Array{c.keys, newK}, 2))
			c.values = swap(c.values, mlx.Concatenate([]*mlx.Array{c.values, newV}, 2))
			mlx.Free(newK, newV)
		}
		c.idx = prev
	}
	if trim := c.keys.Dim(2) - c.MaxSize; trim > 0 {
		c.keys, c.values = swap(c.keys, trimmed(c.keys, trim, nil)), swap(c.values, trimmed(c.values, trim, nil))
		c.idx = c.MaxSize
	}
	if c.idx == c.MaxSize {
		c.idx = 0 // rotate
	}
	s := k.Dim(2)
	shape := c.keys.Shape()
	start, stop := []int{0, 0, c.idx, 0}, []int{shape[0], shape[1], c.idx + s, shape[3]}
	c.keys = swap(c.keys, mlx.SliceUpdate(c.keys, k, start, stop, nil))
	shape = c.values.Shape()
	stop = []int{shape[0], shape[1], c.idx + s, shape[3]}
	c.values = swap(c.values, mlx.SliceUpdate(c.values, v, start, stop, nil))
	c.offset += s
	c.idx += s
	if c.offset < c.keys.Dim(2) {
		return mlx.SliceAxis(c.keys, 2, 0, c.offset), mlx.SliceAxis(c.values, 2, 0, c.offset)
	}
	return c.keys.Clone(), c.values.Clone()
}

// temporalOrder puts the slots in position order, dropping unused ones.
func (c *RotatingKVCache) temporalOrder(x *mlx.Array) *mlx.Array {
	n := x.Dim(2)
	switch {
	case c.idx == n:
		return x.Clone()
	case c.idx < c.offset:
		tail, head := mlx.SliceAxis(x, 2, c.idx, n), mlx.SliceAxis(x, 2, 0, c.idx)
		defer mlx.Free(tail, head)
		return mlx.Concatenate([]*mlx.Array{tail, head}, 2)
	default:
		return mlx.SliceAxis(x, 2, 0, c.idx)
	}
}

// trimmed drops the first n positions of x (none when n ≤ 0) and appends add when set.
func trimmed(x *mlx.Array, n int, add *mlx.Array) *mlx.Array {
	kept := x.Clone()
	if n > 0 {
		kept = swap(kept, mlx.SliceAxis(x, 2, n, x.Dim(2)))
	}
	if add == nil {
		return kept
	}
	defer kept.Free()
	return mlx.Concatenate([]*mlx.Array{kept, add}, 2)
}

func (c *RotatingKVCache) State() []*mlx.Array {
	if c.keys == nil {
		return nil
	}
	return []*mlx.Array{c.keys, c.values}
}

func (c *RotatingKVCache) Free() {
	mlx.Free(c.keys, c.values)
	c.keys, c.values, c.offset, c.idx = nil, nil, 0, 0
}
