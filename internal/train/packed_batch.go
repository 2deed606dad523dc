package train

import (
	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// Segment is one example inside a packed row: its tokens are Tokens[Start:Start+Len] of
// the row, its prompt offset is Offset, and Truncated says it fills max_seq_length, so its
// last token's target (padding) is not counted, as in an unpacked batch.
// Each example's loss is the one it has alone in an unpacked batch (mlx-lm's mask: targets
// offset..length, the step after the last token predicting padding, none past a cut).
type Segment struct {
	Start, Len, Offset int
	Spans              []data.Span // when not nil, the trained tokens of the example, in place of Offset
	Truncated          bool
}

// batchInputs are a step's batch arrays by role; positions and segments are nil unless the
// rows are packed.
type batchInputs struct {
	inputs, targets, picks, weights, positions, segments *mlx.Array
}

// unpackBatch reads the arrays Batch.arrays made: tokens, picks, weights for plain rows;
// inputs, targets, positions, segments, picks, weights for packed ones.
func unpackBatch(in []*mlx.Array) batchInputs {
	if len(in) == 3 {
		inputs, targets := splitTokens(in[0])
		return batchInputs{inputs: inputs, targets: targets, picks: in[1], weights: in[2]}
	}
	return batchInputs{inputs: in[0], targets: in[1], positions: in[2], segments: in[3], picks: in[4], weights: in[5]}
}

// lossArgs are the loss function's batch arguments: targets, picks, weights, and for packed
// rows positions and segments.
func (bi batchInputs) lossArgs() []*mlx.Array {
	args := []*mlx.Array{bi.targets, bi.picks, bi.weights}
	if bi.positions != nil {
		args = append(args, bi.positions, bi.segments)
	}
	return args
}

// packing is the rows' Packing, nil for plain rows.
func (bi batchInputs) packing() *model.Packing {
	if bi.positions == nil {
		return nil
	}
	return model.NewPacking(bi.segments, bi.positions)
}

// packedArrays builds the arrays of a packed batch: inputs and targets (Rows, L) with L the
// width rounded up to a multiple of 32, each token's position within its example (Rows·L,),
// segment ids (Rows, L) (padding is a segment of its own), and the loss positions.
func (b Batch) packedArrays(chunk int) []*mlx.Array {
	l := 32 * ((b.Cols + 31) / 32)
	inputs := make([]int32, b.Rows*l)
	targets := make([]int32, b.Rows*l)
	positions := make([]int32, b.Rows*l)
	segments := make([]int32, b.Rows*l)
	var picks []int32
	var weights []float32
	for r := range b.Rows {
		row := b.Tokens[r*b.Cols : (r+1)*b.Cols]
		base := r * l
		copy(inputs[base:], row[:min(len(row), l)])
		end := 0
		for si, s := range b.Segments[r] {
			for j := range s.Len {
				positions[base+s.Start+j] = int32(j)
				segments[base+s.Start+j] = int32(si)
				if j+1 < s.Len {
					targets[base+s.Start+j] = row[s.Start+j+1]
				} // the last token's target is padding (0), as unpacked
			}
			if s.Spans != nil {
				for _, sp := range s.Spans {
					for k := max(sp.Start, 1); k < min(sp.End, s.Len); k++ {
						picks = append(picks, int32(base+s.Start+k-1))
						weights = append(weights, 1)
					}
				}
			} else {
				last := s.Len - 1
				if s.Truncated {
					last--
				}
				for j := max(0, s.Offset-1); j <= last; j++ {
					picks = append(picks, int32(base+s.Start+j))
					weights = append(weights, 1)
				}
			}
			end = s.Start + s.Len
		}
		for j := end; j < l; j++ {
			positions[base+j] = int32(j - end)
			segments[base+j] = int32(len(b.Segments[r]))
		}
	}
	for range data.LossPositions(len(picks), chunk) - len(picks) {
		picks = append(picks, 0)
		weights = append(weights, 0)
	}
	return []*mlx.Array{mlx.FromSlice(inputs, b.Rows, l), mlx.FromSlice(targets, b.Rows, l),
		mlx.FromSlice(positions, b.Rows*l), mlx.FromSlice(segments, b.Rows, l),
		mlx.FromSlice(picks, len(picks)), mlx.FromSlice(weights, len(weights))}
}
