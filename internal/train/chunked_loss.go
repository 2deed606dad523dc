package train

import (
	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// The head and cross-entropy run only on the positions whose target the loss counts (not
// padding, not a masked prompt), gathered on the host into a list of flat positions, and over
// that list in chunks, so the logits (positions × vocabulary) never exceed a chunk's.
//
// value_and_grad would keep every chunk's logits for the backward pass. Instead each chunk
// computes its cross-entropy and, at once, the gradient of its summed loss with respect to
// the normed hidden states: w·(softmax − onehot) projected back through the head. Only that
// gradient (chunk × hidden) outlives the chunk. The loss returned to value_and_grad is
//
//	stopgrad(Σ w·ce) + (S − stopgrad(S)),  S = Σ n · stopgrad(dn)
//
// whose value is exactly the loss (S − S is zero) and whose gradient with respect to n is dn,
// which flows on through the final norm and the adapted blocks. The head's matmuls are the
// same two the unchunked backward runs; nothing is recomputed.

// lossPositions lists the flat positions r·(width−1)+j of the inputs whose target counts in
// mlx-lm's loss (offset ≤ j+1 ≤ length, within the width−1 input columns), or whose target
// j+1 lies in the row's spans, padded to data.LossPositions with weight-0 copies of
// position 0.
func (b Batch) lossPositions(width, chunk int) (picks []int32, weights []float32) {
	cols := width - 1
	for r := range b.Rows {
		if b.Spans != nil {
			for _, s := range b.Spans[r] {
				for k := max(s.Start, 1); k < min(s.End, b.Lengths[r], cols+1); k++ {
					picks = append(picks, int32(r*cols+k-1))
					weights = append(weights, 1)
				}
			}
			continue
		}
		off := 0
		if b.Offsets != nil {
			off = b.Offsets[r]
		}
		for j := max(0, off-1); j <= min(b.Lengths[r]-1, cols-1); j++ {
			picks = append(picks, int32(r*cols+j))
			weights = append(weights, 1)
		}
	}
	for range data.LossPositions(len(picks), chunk) - len(picks) {
		picks = append(picks, 0)
		weights = append(weights, 0)
	}
	return picks, weights
}

// chunkedLoss is mlx-lm's masked mean cross-entropy of the hidden states h (B, L, H) leaving
// the last block against targets (B, L), over the positions picks (P,) int32 weighted by
// weights (P,) float32 (1 counted, 0 padding). It returns the loss (float32) and the token
// count (int32). With grad the loss carries the gradient described above; without, it is the
// value alone.
func chunkedLoss(m *model.Model, h, targets, picks, weights *mlx.Array, chunk int, grad bool) (loss, ntoks *mlx.Array) {
	b, l, hidden := h.Dim(0), h.Dim(1), h.Dim(2)
	flat := mlx.Reshape(h, b*l, hidden)
	hs := mlx.Take(flat, picks, 0)
	flat.Free()
	n := m.HeadNorm(hs)
	hs.Free()
	defer n.Free()
	tflat := mlx.Reshape(targets, b*l)
	ts := mlx.Take(tflat, picks, 0)
	tflat.Free()
	defer ts.Free()
	fixed := mlx.StopGradient(n)
	defer fixed.Free()

	p := picks.Dim(0)
	if chunk <= 0 || chunk > p {
		chunk = p
	}
	var parts []*mlx.Array
	for s := 0; s < p; s += chunk {
		e := min(s+chunk, p)
		nc := mlx.SliceAxis(fixed, 0, s, e)
		if len(parts) > 0 {
			// MLX evaluates independent branches side by side, which would keep every
			// chunk's logits alive at once: each chunk starts after the one before it ends.
			after := mlx.Depends(nc, parts[len(parts)-1])
			nc.Free()
			nc = after
		}
		tc := mlx.SliceAxis(ts, 0, s, e)
		wc := mlx.SliceAxis(weights, 0, s, e)
		parts = append(parts, chunkPart(m, nc, tc, wc, grad))
		mlx.Free(nc, tc, wc)
	}
	joined := mlx.Concatenate(parts, 0)
	mlx.Free(parts...)
	all := mlx.StopGradient(joined)
	joined.Free()
	defer all.Free()

	width := all.Dim(1)
	ceCol := mlx.SliceAxis(all, 1, width-1, width)
	ce := mlx.Squeeze(ceCol, 1)
	ceCol.Free()
	ce32 := mlx.AsType(ce, mlx.Float32)
	ce.Free()
	weighted := mlx.Multiply(ce32, weights)
	ce32.Free()
	total := mlx.Sum(weighted, false)
	weighted.Free()
	if grad {
		dn := mlx.SliceAxis(all, 1, 0, hidden)
		s := dot32(n, dn)
		dn.Free()
		fixedS := mlx.StopGradient(s)
		zero := mlx.Subtract(s, fixedS)
		mlx.Free(s, fixedS)
		withGrad := mlx.Add(total, zero)
		mlx.Free(total, zero)
		total = withGrad
	}
	defer total.Free()
	count := mlx.Sum(weights, false)
	ntoks = mlx.AsType(count, mlx.Int32)
	count.Free()
	return mlx.Divide(total, ntoks), ntoks
}

// chunkPart is one chunk's cross-entropy (C, 1) in the logits' dtype and, with grad, before
// it the gradient of Σ w·ce with respect to the normed hidden states: (C, H+1) or (C, 1).
func chunkPart(m *model.Model, n, targets, weights *mlx.Array, grad bool) *mlx.Array {
	logits, tanh := m.Softcap(m.Project(n))
	defer tanh.Free()
	mx := mlx.Max(logits, true, -1)
	shifted := mlx.Subtract(logits, mx)
	mlx.Free(logits, mx)
	defer shifted.Free()
	idx := mlx.ExpandDims(targets, -1)
	defer idx.Free()
	score := mlx.TakeAlongAxis(shifted, idx, -1)
	lse := mlx.LogSumExp(shifted, true, -1)
	defer lse.Free()
	ce := mlx.Subtract(lse, score)
	score.Free()
	if !grad {
		return ce
	}
	defer ce.Free()
	// d(Σ w·ce)/d logits = w · (softmax − onehot), with softmax as logsumexp's gradient
	// computes it: exp(shifted − lse).
	diff := mlx.Subtract(shifted, lse)
	probs := mlx.Exp(diff)
	diff.Free()
	vocab := mlx.Arange(0, float64(shifted.Dim(1)), 1, mlx.Int32)
	hot := mlx.Equal(vocab, idx)
	vocab.Free()
	hotf := mlx.AsType(hot, probs.Dtype())
	hot.Free()
	dl := mlx.Subtract(probs, hotf)
	mlx.Free(probs, hotf)
	w := mlx.AsType(weights, dl.Dtype())
	wcol := mlx.ExpandDims(w, -1)
	w.Free()
	scaled := mlx.Multiply(dl, wcol)
	mlx.Free(dl, wcol)
	if tanh != nil {
		// Through the cap: d(cap·tanh(z/cap))/dz = 1 − tanh²(z/cap).
		sq := mlx.Square(tanh)
		one := mlx.Scalar(1, sq.Dtype())
		slope := mlx.Subtract(one, sq)
		mlx.Free(sq, one)
		through := mlx.Multiply(scaled, slope)
		mlx.Free(scaled, slope)
		scaled = through
	}
	dn := m.ProjectBack(scaled)
	scaled.Free()
	defer dn.Free()
	return mlx.Concatenate([]*mlx.Array{dn, ce}, 1)
}

// dot32 is Σ a·b over every element, in float32.
func dot32(a, b *mlx.Array) *mlx.Array {
	a32 := mlx.AsType(a, mlx.Float32)
	b32 := mlx.AsType(b, mlx.Float32)
	prod := mlx.Multiply(a32, b32)
	mlx.Free(a32, b32)
	defer prod.Free()
	return mlx.Sum(prod, false)
}
