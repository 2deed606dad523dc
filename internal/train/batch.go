package train

import (
	"fmt"

	"github.com/yai-dev/yai/internal/data"
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
	// Spans, when set, replace Offsets: row i's loss counts the targets at token indices k
	// in its spans (1 <= k < Lengths[i]), predicted from input k-1; a nil row counts none.
	Spans [][]data.Span
	// Segments, when set, make the rows packed: row i holds the examples Segments[i] one
	// after another (see Segment); Offsets and Lengths are then unused.
	Segments [][]Segment
	// Key names the batch's rows for the prefix cache: batches with one key have the same
	// tokens. Empty: never cached.
	Key string
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
	if b.Segments != nil {
		if len(b.Segments) != b.Rows {
			return fmt.Errorf("train: packed batch of %d rows has segments for %d", b.Rows, len(b.Segments))
		}
		for r, row := range b.Segments {
			for _, s := range row {
				if s.Start < 0 || s.Len < 1 || s.Start+s.Len > b.Cols {
					return fmt.Errorf("train: row %d: example at %d of %d tokens does not fit %d columns", r, s.Start, s.Len, b.Cols)
				}
			}
		}
		return nil
	}
	if len(b.Lengths) != b.Rows || (b.Offsets != nil && len(b.Offsets) != b.Rows) || (b.Spans != nil && len(b.Spans) != b.Rows) {
		return fmt.Errorf("train: batch of %d rows has %d lengths and %d offsets", b.Rows, len(b.Lengths), len(b.Offsets))
	}
	return nil
}

// arrays builds the step's batch inputs: the padded token array (Rows, Bucket(Cols)), the
// flat positions of the counted targets (P,) int32 and their weights (P,) float32 (see
// lossPositions). Call on the MLX thread.
func (b Batch) arrays(chunk int) []*mlx.Array {
	if b.Segments != nil {
		return b.packedArrays(chunk)
	}
	width := Bucket(b.Cols)
	padded := b.Tokens
	if width != b.Cols {
		padded = make([]int32, b.Rows*width)
		for r := range b.Rows {
			copy(padded[r*width:], b.Tokens[r*b.Cols:(r+1)*b.Cols])
		}
	}
	picks, weights := b.lossPositions(width, chunk)
	return []*mlx.Array{mlx.FromSlice(padded, b.Rows, width),
		mlx.FromSlice(picks, len(picks)), mlx.FromSlice(weights, len(weights))}
}

// Parts splits the batch's rows into k consecutive parts of nearly equal size, each cut to
// the width its own longest row needs: what a split step computes part by part.
func (b Batch) Parts(k int) []Batch {
	k = max(1, min(k, b.Rows))
	out := make([]Batch, 0, k)
	for p := range k {
		lo, hi := p*b.Rows/k, (p+1)*b.Rows/k
		longest := 0
		for r := lo; r < hi; r++ {
			if b.Segments != nil {
				for _, s := range b.Segments[r] {
					longest = max(longest, s.Start+s.Len)
				}
			} else {
				longest = max(longest, b.Lengths[r]+1)
			}
		}
		cols := min(b.Cols, max(2, longest))
		part := Batch{Rows: hi - lo, Cols: cols, Tokens: make([]int32, (hi-lo)*cols)}
		if b.Segments != nil {
			part.Segments = b.Segments[lo:hi]
		} else {
			part.Lengths = b.Lengths[lo:hi]
			if b.Offsets != nil {
				part.Offsets = b.Offsets[lo:hi]
			}
			if b.Spans != nil {
				part.Spans = b.Spans[lo:hi]
			}
		}
		for r := lo; r < hi; r++ {
			copy(part.Tokens[(r-lo)*cols:(r-lo+1)*cols], b.Tokens[r*b.Cols:r*b.Cols+cols])
		}
		out = append(out, part)
	}
	return out
}

func splitTokens(tokens *mlx.Array) (inputs, targets *mlx.Array) {
	n := tokens.Dim(1)
	return mlx.SliceAxis(tokens, 1, 0, n-1), mlx.SliceAxis(tokens, 1, 1, n)
}
