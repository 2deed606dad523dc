package generate

import "github.com/yai-dev/yai/mlx"

// cacheStep is how many positions the cache grows by at a time (mlx-lm's KVCache.step):
// growing in blocks keeps the arrays' shapes, and so memory, unchanged between blocks.
const cacheStep = 256

// kvCache holds one layer's rotated keys and values, (B, kv heads, capacity, head dim),
// filled up to offset. It is mlx-lm's KVCache.
type kvCache struct {
	keys, values *mlx.Array
	offset       int
}

// update writes keys and values (B, kv heads, L, D) at the current offset and returns the
// filled part of the cache, owned by the caller's scope. The cache's own arrays are detached
// from every scope: they live until free.
func (c *kvCache) update(k, v *mlx.Array) (keys, values *mlx.Array) {
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

// grow adds enough cacheStep blocks of zeros for l more positions, as mlx-lm does
// (trimming a partly used last block first).
func (c *kvCache) grow(k, v *mlx.Array, l int) {
	n := (cacheStep + l - 1) / cacheStep * cacheStep
	ks, vs := k.Shape(), v.Shape()
	newK := mlx.Zeros([]int{ks[0], ks[1], n, ks[3]}, k.Dtype())
	newV := mlx.Zeros([]int{vs[0], vs[1], n, vs[3]}, v.Dtype())
	if c.keys == nil {
		mlx.Detach(newK, newV)
		c.keys, c.values = newK, newV
		return
	}
	if c.offset%cacheStep != 0 {
		c.keys = swap(c.keys, mlx.SliceAxis(c.keys, 2, 0, c.offset))
		c.values = swap(c.values, mlx.SliceAxis(c.values, 2, 0, c.offset))
	}
	c.keys = swap(c.keys, mlx.Concatenate([]*mlx.Array{c.keys, newK}, 2))
	c.values = swap(c.values, mlx.Concatenate([]*mlx.Array{c.values, newV}, 2))
	mlx.Free(newK, newV)
}

// replace writes update into dst at position at along the sequence axis.
func (c *kvCache) replace(dst, update *mlx.Array, at int) *mlx.Array {
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

func (c *kvCache) free() {
	mlx.Free(c.keys, c.values)
	c.keys, c.values, c.offset = nil, nil, 0
}
