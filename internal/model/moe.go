package model

import "github.com/yai-dev/yai/mlx"

// A sparse mixture of experts, as mlx-lm's switch_layers.py and the MoE blocks of
// mixtral.py and qwen3_moe.py compute it: a router scores the experts, each token runs
// through the TopK best of a SwitchGLU, and their outputs are summed weighted by the scores.

// SwitchLinear is a stack of experts' linear layers, plain or quantized (mlx-lm's
// SwitchLinear and QuantizedSwitchLinear); LoRA wraps one. ForwardExperts multiplies the
// matrices of x (…, M, in) by the experts indices names, broadcasting their batch axes, as
// gather_mm does: (…, M, out).
type SwitchLinear interface {
	ForwardExperts(x, indices *mlx.Array, sorted bool) *mlx.Array
	InFeatures() int
	OutFeatures() int
	NumExperts() int
	// Arrays are the layer's tensors by mlx-lm's leaf names, as Linear's.
	Arrays() map[string]*mlx.Array
}

// DenseSwitchLinear is a plain stack: Weight (experts, out, in), optional Bias (experts,
// out).
type DenseSwitchLinear struct {
	Weight, Bias *mlx.Array
}

func (l *DenseSwitchLinear) ForwardExperts(x, indices *mlx.Array, sorted bool) *mlx.Array {
	wt := mlx.SwapAxes(l.Weight, -1, -2)
	defer wt.Free()
	return addExpertBias(mlx.GatherMM(x, wt, nil, indices, sorted), l.Bias, indices)
}

func (l *DenseSwitchLinear) InFeatures() int  { return l.Weight.Dim(2) }
func (l *DenseSwitchLinear) OutFeatures() int { return l.Weight.Dim(1) }
func (l *DenseSwitchLinear) NumExperts() int  { return l.Weight.Dim(0) }

func (l *DenseSwitchLinear) Arrays() map[string]*mlx.Array {
	m := map[string]*mlx.Array{"weight": l.Weight}
	if l.Bias != nil {
		m["bias"] = l.Bias
	}
	return m
}

// QuantizedSwitchLinear is a packed stack: Weight uint32 (experts, out, in·bits/32), Scales
// and Biases (experts, out, in/group_size), optional Bias (experts, out).
type QuantizedSwitchLinear struct {
	Weight, Scales, Biases *mlx.Array
	Bias                   *mlx.Array
	Quant                  mlx.Quantization
}

func (l *QuantizedSwitchLinear) ForwardExperts(x, indices *mlx.Array, sorted bool) *mlx.Array {
	y := mlx.GatherQMM(x, l.Weight, l.Scales, l.Biases, nil, indices, true, l.Quant, sorted)
	return addExpertBias(y, l.Bias, indices)
}

func (l *QuantizedSwitchLinear) InFeatures() int  { return l.Weight.Dim(2) * 32 / l.Quant.Bits }
func (l *QuantizedSwitchLinear) OutFeatures() int { return l.Weight.Dim(1) }
func (l *QuantizedSwitchLinear) NumExperts() int  { return l.Weight.Dim(0) }

func (l *QuantizedSwitchLinear) Arrays() map[string]*mlx.Array {
	m := map[string]*mlx.Array{"weight": l.Weight, "scales": l.Scales}
	if l.Biases != nil {
		m["biases"] = l.Biases
	}
	if l.Bias != nil {
		m["bias"] = l.Bias
	}
	return m
}

// addExpertBias is y + expand_dims(bias[indices], -2), freeing y; y itself without a bias.
func addExpertBias(y, bias, indices *mlx.Array) *mlx.Array {
	if bias == nil {
		return y
	}
	b := mlx.Take(bias, indices, 0)
	be := mlx.ExpandDims(b, -2)
	b.Free()
	defer mlx.Free(y, be)
	return mlx.Add(y, be)
}

// SwitchGLU is the experts' gated MLP: down(act(gate(x)) · up(x)) through each token's
// experts (mlx-lm's SwitchGLU).
type SwitchGLU struct {
	Gate, Up, Down SwitchLinear
	Activation     string
}

// sortMin is the fewest (token, expert) pairs SwitchGLU sorts by expert, so that each
// expert's rows are contiguous (mlx-lm's `indices.size >= 64`).
const sortMin = 64

// Forward runs x (…, H) through the experts indices (…, k) names: (…, k, H).
func (s *SwitchGLU) Forward(x, indices *mlx.Array) *mlx.Array {
	x1 := mlx.ExpandDims(x, -2)
	xe := mlx.ExpandDims(x1, -3) // (…, 1, 1, H)
	x1.Free()
	idx := mlx.StopGradient(indices)
	sorted := idx.Size() >= sortMin
	var inv *mlx.Array
	if sorted {
		xs, is, order := gatherSort(xe, idx)
		mlx.Free(xe, idx)
		xe, idx, inv = xs, is, order
	}
	up := s.Up.ForwardExperts(xe, idx, sorted)
	gate := s.Gate.ForwardExperts(xe, idx, sorted)
	xe.Free()
	h := gated(s.Activation, gate, up)
	mlx.Free(gate, up)
	y := s.Down.ForwardExperts(h, idx, sorted)
	mlx.Free(h, idx)
	if sorted {
		u := mlx.Take(y, inv, 0)
		mlx.Free(y, inv)
		y = mlx.Unflatten(u, 0, indices.Shape()...)
		u.Free()
	}
	defer y.Free()
	return mlx.Squeeze(y, -2)
}

// gatherSort is mlx-lm's _gather_sort: the rows of x (…, 1, 1, H), one per (token, expert)
// pair, ordered by expert, with their experts and the order that undoes the sort.
func gatherSort(x, indices *mlx.Array) (xs, idx, inv *mlx.Array) {
	m := indices.Dim(-1)
	flat := mlx.Flatten(indices, 0, -1)
	order := mlx.Argsort(flat, -1)
	inv = mlx.Argsort(order, -1)
	mm := mlx.Scalar(float64(m), order.Dtype())
	rows := mlx.FloorDivide(order, mm)
	xf := mlx.Flatten(x, 0, -3)
	xs = mlx.Take(xf, rows, 0)
	idx = mlx.Take(flat, order, 0)
	mlx.Free(flat, order, mm, rows, xf)
	return xs, idx, inv
}

// MoE is a sparse mixture-of-experts feed-forward. Mixtral's router keeps the TopK largest
// logits and softmaxes them; Qwen3-MoE's (SoftmaxFirst) softmaxes every logit, keeps the
// TopK largest probabilities and, with NormTopK, rescales them to sum to one.
type MoE struct {
	Router       Linear
	Experts      *SwitchGLU
	TopK         int
	SoftmaxFirst bool
	NormTopK     bool
}

func (m *MoE) Forward(x *mlx.Array) *mlx.Array {
	inds, scores := m.route(x)
	y := m.Experts.Forward(x, inds)
	inds.Free()
	se := mlx.ExpandDims(scores, -1)
	scores.Free()
	w := mlx.Multiply(y, se)
	se.Free()
	out := mlx.Sum(w, false, -2)
	w.Free()
	if !m.SoftmaxFirst || out.Dtype() == y.Dtype() {
		y.Free()
		return out
	}
	defer mlx.Free(y, out)
	return mlx.AsType(out, y.Dtype()) // qwen3_moe.py's .astype(y.dtype)
}

// route picks each token's experts (…, k) and their weights (…, k), in mlx-lm's order of
// operations.
func (m *MoE) route(x *mlx.Array) (inds, scores *mlx.Array) {
	k := m.TopK
	gates := m.Router.Forward(x)
	defer gates.Free()
	if !m.SoftmaxFirst {
		// mixtral.py: argpartition(-gates, kth=k-1)[..., :k], softmax of the picked logits.
		neg := mlx.Negative(gates)
		part := mlx.ArgPartition(neg, k-1, -1)
		neg.Free()
		top := mlx.SliceAxis(part, -1, 0, k)
		part.Free()
		inds = mlx.StopGradient(top)
		top.Free()
		picked := mlx.TakeAlongAxis(gates, inds, -1)
		defer picked.Free()
		return inds, mlx.Softmax(picked, true, -1)
	}
	// qwen3_moe.py: softmax, argpartition(gates, kth=-k)[..., -k:], renormalized.
	probs := mlx.Softmax(gates, true, -1)
	defer probs.Free()
	e := probs.Dim(-1)
	part := mlx.ArgPartition(probs, -k, -1)
	top := mlx.SliceAxis(part, -1, e-k, e)
	part.Free()
	inds = mlx.StopGradient(top)
	top.Free()
	scores = mlx.TakeAlongAxis(probs, inds, -1)
	if !m.NormTopK {
		return inds, scores
	}
	sum := mlx.Sum(scores, true, -1)
	defer mlx.Free(scores, sum)
	return inds, mlx.Divide(scores, sum)
}
