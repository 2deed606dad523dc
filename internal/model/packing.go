package model

import "github.com/yai-dev/yai/mlx"

// Packing describes rows that hold several examples one after another: each token attends
// only to earlier tokens of its own example, and rotary positions restart at every example,
// so each example is computed as if it were alone in its row.
type Packing struct {
	// Positions (B·L,) int32: each token's position within its example, row after row.
	Positions *mlx.Array
	// Mask (B, 1, L, L) bool: query i may attend to key j.
	Mask *mlx.Array
}

// NewPacking builds the attention mask of rows whose tokens carry segment ids (B, L) int32
// (the example each token belongs to; padding is a segment of its own) and positions (B·L,)
// int32. It takes neither argument's ownership; Free releases what it made.
func NewPacking(segments, positions *mlx.Array) *Packing {
	b, l := segments.Dim(0), segments.Dim(1)
	q := mlx.Reshape(segments, b, 1, l, 1)
	k := mlx.Reshape(segments, b, 1, 1, l)
	same := mlx.Equal(q, k)
	mlx.Free(q, k)
	idx := mlx.Arange(0, float64(l), 1, mlx.Int32)
	rows := mlx.Reshape(idx, l, 1)
	cols := mlx.Reshape(idx, 1, l)
	causal := mlx.GreaterEqual(rows, cols)
	mlx.Free(idx, rows, cols)
	mask := mlx.LogicalAnd(same, causal)
	mlx.Free(same, causal)
	return &Packing{Positions: mlx.Copy(positions), Mask: mask}
}

// Free releases the mask and positions.
func (p *Packing) Free() {
	if p != nil {
		mlx.Free(p.Positions, p.Mask)
	}
}

// rope applies the rotary embedding to x (B, H, L, D) at each token's own position: rows
// are split into one-token sequences whose offsets are the positions.
func (p *Packing) rope(r RoPE, x *mlx.Array) *mlx.Array {
	s := x.Shape()
	b, h, l, d := s[0], s[1], s[2], s[3]
	t := mlx.Transpose(x, 0, 2, 1, 3)
	flat := mlx.Reshape(t, b*l, h, 1, d)
	t.Free()
	rotated := r.ApplyAt(flat, p.Positions)
	flat.Free()
	back := mlx.Reshape(rotated, b, l, h, d)
	rotated.Free()
	defer back.Free()
	return mlx.Transpose(back, 0, 2, 1, 3)
}
