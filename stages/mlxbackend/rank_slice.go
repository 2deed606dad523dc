package mlxbackend

import (
	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/stages"
)

// rankSlice is this rank's share of a global batch: rows [rank·n, (rank+1)·n) with n =
// rows/world. Every rank draws the same global batches (same data, seed and order), so the
// shares partition each batch. The width stays the global batch's, so every rank runs the
// same compiled shapes; padding past a row's length changes no loss.
func rankSlice(b data.Batch, ranks stages.Ranks) data.Batch {
	if ranks == nil || ranks.World() <= 1 {
		return b
	}
	n := b.Size / ranks.World()
	lo, hi := ranks.Rank()*n, (ranks.Rank()+1)*n
	var spans [][]data.Span
	if b.Spans != nil {
		spans = b.Spans[lo:hi]
	}
	return data.Batch{
		Spans:    spans,
		Examples: b.Examples[lo:hi],
		Tokens:   b.Tokens[lo*b.Width : hi*b.Width],
		Size:     n,
		Width:    b.Width,
		Offsets:  b.Offsets[lo:hi],
		Lengths:  b.Lengths[lo:hi],
	}
}
