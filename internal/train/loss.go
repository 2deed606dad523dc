package train

import "github.com/yai-dev/yai/mlx"

// CrossEntropy is mlx.nn.losses.cross_entropy with class-index targets and no reduction,
// computed the way MLX does off the GPU: logsumexp of the max-shifted logits minus the
// target's shifted logit, in the logits' dtype.
func CrossEntropy(logits, targets *mlx.Array) *mlx.Array {
	mx := mlx.Max(logits, true, -1)
	sg := mlx.StopGradient(mx)
	mx.Free()
	shifted := mlx.Subtract(logits, sg)
	sg.Free()
	defer shifted.Free()
	idx := mlx.ExpandDims(targets, -1)
	picked := mlx.TakeAlongAxis(shifted, idx, -1)
	idx.Free()
	score := mlx.Squeeze(picked, -1)
	picked.Free()
	defer score.Free()
	lse := mlx.LogSumExp(shifted, false, -1)
	defer lse.Free()
	return mlx.Subtract(lse, score)
}

// Loss is mlx-lm's default_loss given the logits of batch[:, :-1]: cross-entropy against
// targets = batch[:, 1:], counted only at steps in [offset, length] of each row (lengths is
// (B, 2) int32 holding offset and length), summed in float32 and divided by the token count.
// It returns that mean and the token count (int32).
func Loss(logits, targets, lengths *mlx.Array) (loss, ntoks *mlx.Array) {
	steps := mlx.Arange(1, float64(targets.Dim(1)+1), 1, mlx.Int32)
	defer steps.Free()
	lo := mlx.SliceAxis(lengths, 1, 0, 1)
	hi := mlx.SliceAxis(lengths, 1, 1, 2)
	ge := mlx.GreaterEqual(steps, lo)
	le := mlx.LessEqual(steps, hi)
	mlx.Free(lo, hi)
	mask := mlx.LogicalAnd(ge, le)
	mlx.Free(ge, le)
	defer mask.Free()
	return MaskedLoss(logits, targets, mask)
}

// MaskedLoss is Loss with the counted targets given as a (B, L) mask (boolean, or 0/1 of the
// logits' dtype).
func MaskedLoss(logits, targets, mask *mlx.Array) (loss, ntoks *mlx.Array) {
	ce := CrossEntropy(logits, targets)
	masked := mlx.Multiply(ce, mask)
	ce.Free()
	f := mlx.AsType(masked, mlx.Float32)
	masked.Free()
	total := mlx.Sum(f, false)
	f.Free()
	defer total.Free()
	sum := mlx.Sum(mask, false)
	ntoks = mlx.AsType(sum, mlx.Int32)
	sum.Free()
	return mlx.Divide(total, ntoks), ntoks
}
