package memplan

import "github.com/yai-dev/yai/modeldir"

// Long rows are computed a slice of the sequence at a time (internal/model's
// SetSequenceChunks): attention a chunk of queries at a time, forward and backward, and the
// feed-forward a chunk of rows at a time. Rows whose whole tensors are small keep the fused
// attention and the whole MLP, which are faster.
const (
	// chunkFrom is the size of a whole row's attention scores (batch × heads × seq² float32)
	// or MLP tensors (batch × seq × intermediate × 3 float32) above which they are computed
	// in chunks, and chunkBytes the most a chunk's take.
	chunkFrom  = 256 << 20
	chunkBytes = 64 << 20
	// minChunk is the fewest rows a chunk takes: smaller ones cost more in launches than
	// they save.
	minChunk = 64
)

// Chunks are the rows per attention and per feed-forward chunk of a step (0: the whole
// row at once).
type Chunks struct {
	Attention, FeedForward int
}

// SequenceChunks are the chunks for batches of batch rows of seqLen tokens on a model of
// config c: for each of attention and the feed-forward whose whole tensors pass chunkFrom,
// the largest power of two of rows whose tensors stay within chunkBytes.
func SequenceChunks(c modeldir.Config, batch, seqLen int) Chunks {
	rows := func(perRow int64) int {
		if perRow*int64(seqLen) <= chunkFrom {
			return 0
		}
		n := minChunk
		for int64(2*n)*perRow <= chunkBytes && 2*n < seqLen {
			n *= 2
		}
		if n >= seqLen {
			return 0
		}
		return n
	}
	ff := c.IntermediateSize
	if c.ExpertSize > 0 {
		ff = c.ExpertSize * max(1, c.ExpertsPerToken)
	}
	return Chunks{
		Attention:   rows(int64(batch) * int64(c.NumAttentionHeads) * int64(seqLen) * 4),
		FeedForward: rows(int64(batch) * int64(ff) * 3 * 4),
	}
}
