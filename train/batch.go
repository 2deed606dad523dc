package train

import (
	"fmt"

	"github.com/yai-dev/yai/mlx"
)

// Batch is one padded batch of token ids in mlx-lm's layout: Rows sequences of Cols tokens
// (row-major, padding after each sequence), with each row's prompt offset and length. The
// loss counts target steps s (1-based) with Offsets[i] <= s <= Lengths[i].
type Batch struct {
	Tokens     []int32
	Rows, Cols int
	Offsets    []int
	Lengths    []int
}

// Bucket is the width a batch of Cols tokens is padded to before it reaches the compiled
// step: one more than a multiple of 32, as mlx-lm pads. Padding past every row's length
// changes no loss, and a bounded set of widths keeps MLX's compile cache bounded.
func Bucket(cols int) int {
	const padTo = 32
	return 1 + padTo*((cols-1+padTo-1)/padTo)
}

func (b Batch) validate() error {
	if b.Rows < 1 || b.Cols < 2 {
		return fmt.Errorf("train: batch of %d×%d tokens: need at least one row of two tokens", b.Rows, b.Cols)
	}
	if len(b.Tokens) != b.Rows*b.Cols {
		return fmt.Errorf("train: batch has %d tokens, want %d×%d", len(b.Tokens), b.Rows, b.Cols)
	}
	if len(b.Lengths) != b.Rows || (b.Offsets != nil && len(b.Offsets) != b.Rows) {
		return fmt.Errorf("train: batch of %d rows has %d lengths and %d offsets", b.Rows, len(b.Lengths), len(b.Offsets))
	}
	return nil
}

// arrays builds the padded token array (Rows, Bucket(Cols)) and the (Rows, 2) int32 array of
// offsets and lengths. Call on the MLX thread.
func (b Batch) arrays() (tokens, lengths *mlx.Array) {
	width := Bucket(b.Cols)
	padded := b.Tokens
	if width != b.Cols {
		padded = make([]int32, b.Rows*width)
		for r := range b.Rows {
			copy(padded[r*width:], b.Tokens[r*b.Cols:(r+1)*b.Cols])
		}
	}
	ol := make([]int32, 2*b.Rows)
	for r := range b.Rows {
		if b.Offsets != nil {
			ol[2*r] = int32(b.Offsets[r])
		}
		ol[2*r+1] = int32(b.Lengths[r])
	}
	return mlx.FromSlice(padded, b.Rows, width), mlx.FromSlice(ol, b.Rows, 2)
}

// Parts splits the batch's rows into k consecutive parts of nearly equal size, each cut to
// the width its own longest row needs: what a split step computes part by part.
func (b Batch) Parts(k int) []Batch {
	k = max(1, min(k, b.Rows))
	out := make([]Batch, 0, k)
	for p := range k {
		lo, hi := p*b.Rows/k, (p+1)*b.Rows/k
		longest := 0
		for _, n := range b.Lengths[lo:hi] {
			longest = max(longest, n)
		}
		cols := min(b.Cols, max(2, longest+1))
		part := Batch{Rows: hi - lo, Cols: cols, Tokens: make([]int32, (hi-lo)*cols), Lengths: b.Lengths[lo:hi]}
		if b.Offsets != nil {
			part.Offsets = b.Offsets[lo:hi]
		}
		for r := lo; r < hi; r++ {
			copy(part.Tokens[(r-lo)*cols:(r-lo+1)*cols], b.Tokens[r*b.Cols:r*b.Cols+cols])
		}
		out = append(out, part)
	}
	return out
}
