package train

import (
	"slices"

	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/mlx"
)

// One step as a function of explicit inputs: what the trainer compiles. Its argument list is
// the layout's; it returns the new parameters and optimizer state, or the gradient sum to
// carry, with the loss, token count and finiteness.

// layout is where each input sits in the step function's argument list.
type layout struct {
	params, state, accum [2]int // [start, end)
	lr, step, key        int    // -1 when absent
	batch                int    // the batch's arrays run from here to the end (see Batch.arrays)
}

func (t *Trainer) layout(update bool) layout {
	np := 2 * len(t.adapters.Layers)
	l := layout{lr: -1, step: -1, key: -1}
	n := 0
	span := func(k int) [2]int { s := [2]int{n, n + k}; n += k; return s }
	one := func() int { n++; return n - 1 }
	l.params = span(np)
	if update {
		l.state = span(len(t.state))
	}
	if t.opts.GradAccumulation > 1 {
		l.accum = span(np)
	}
	if update {
		l.lr, l.step = one(), one()
	}
	if t.adapters.HasDropout() {
		l.key = one()
	}
	l.batch = n
	return l
}

// stepFunc is one training step as a function of explicit inputs (see layout). With update
// it returns new params, new state, loss, token count and whether the step was finite;
// without, loss, token count, finiteness and the gradient sum to carry into the next step.
// With the prefix cache filling, the hidden states to cache come last.
func (t *Trainer) stepFunc(update bool, chunk int, prefix prefixMode) mlx.Func {
	return func(in []*mlx.Array) []*mlx.Array {
		l := t.layout(update)
		var key, cached *mlx.Array
		if l.key >= 0 {
			key = in[l.key]
		}
		batch := in[l.batch:]
		if prefix == prefixUse {
			cached, batch = batch[len(batch)-1], batch[:len(batch)-1]
		}
		loss, ntoks, grads, filled := t.gradients(in[l.params[0]:l.params[1]], key, batch, cached, prefix, chunk)
		out := t.finish(update, l, in, loss, ntoks, grads)
		if prefix == prefixFill {
			out = append(out, filled)
		}
		return out
	}
}

// gradients is the loss of one batch, its token count and the loss's gradients with respect
// to params; filled is the hidden state to cache when prefix is prefixFill.
func (t *Trainer) gradients(params []*mlx.Array, key *mlx.Array, batch []*mlx.Array, cached *mlx.Array, prefix prefixMode, chunk int) (loss, ntoks *mlx.Array, grads []*mlx.Array, filled *mlx.Array) {
	if key != nil {
		t.setDropout(key)
		defer t.adapters.SetDropoutKeys(nil)
	}
	bi := unpackBatch(batch)
	var h *mlx.Array
	switch prefix {
	case prefixUse:
		h = mlx.StopGradient(cached)
	case prefixFill:
		h = t.frozen(bi)
		filled = mlx.Copy(h)
	default:
		h = t.frozen(bi)
	}
	argnums := make([]int, len(params))
	for i := range argnums {
		argnums[i] = i
	}
	vg := mlx.ValueAndGrad(t.lossFunc(chunk), argnums...)
	values, grads := vg(append(append(slices.Clone(params), h), bi.lossArgs()...))
	return values[0], values[1], grads, filled
}

// finish turns a batch's loss and gradients into the step's outputs: a non-finite step adds
// nothing and changes nothing; otherwise the gradients join the accumulation and, with
// update, the optimizer applies them.
func (t *Trainer) finish(update bool, l layout, in []*mlx.Array, loss, ntoks *mlx.Array, grads []*mlx.Array) []*mlx.Array {
	params := in[l.params[0]:l.params[1]]
	finite := allFinite(append([]*mlx.Array{loss}, grads...))
	if l.accum[1] > l.accum[0] {
		prev := in[l.accum[0]:l.accum[1]]
		for i := range grads {
			// A non-finite micro-batch adds nothing to the running sum.
			grads[i] = mlx.Where(finite, mlx.Add(grads[i], prev[i]), prev[i])
		}
	} else if !update {
		for i := range grads {
			grads[i] = mlx.Where(finite, grads[i], mlx.Zeros(grads[i].Shape(), grads[i].Dtype()))
		}
	}
	if !update {
		return append([]*mlx.Array{loss, ntoks, finite}, grads...)
	}
	if t.opts.AllReduce != nil {
		grads, loss, ntoks, finite = t.reduceAcross(grads, loss, ntoks)
	}
	if n := t.opts.GradAccumulation; n > 1 {
		for i := range grads {
			grads[i] = mlx.DivScalar(grads[i], float64(n))
		}
	}
	if c := t.opt.Config().MaxGradNorm; c > 0 {
		grads, _ = optim.ClipGradNorm(grads, c)
	}
	state := in[l.state[0]:l.state[1]]
	newParams, newState := t.opt.Apply(params, grads, state, in[l.lr], in[l.step])
	// A non-finite step is never applied: parameters and state keep their values.
	keepUnlessFinite(finite, newParams, params)
	keepUnlessFinite(finite, newState, state)
	out := append(newParams, newState...)
	return append(out, loss, ntoks, finite)
}

// setDropout derives one key per adapter layer from key.
func (t *Trainer) setDropout(key *mlx.Array) {
	n := len(t.adapters.Layers)
	keys := mlx.RandomSplit(key, max(n, 2))
	per := make([]*mlx.Array, n)
	for i := range per {
		k := mlx.SliceAxis(keys, 0, i, i+1)
		per[i] = mlx.Squeeze(k, 0)
	}
	t.adapters.SetDropoutKeys(per)
}

// Gradients computes the loss, token count and adapter gradients of one batch without
// updating anything (dropout on, as in a training step). The gradients are evaluated and
// owned by the caller, keyed by parameter name.
func (t *Trainer) Gradients(b Batch) (loss float64, tokens int, grads map[string]*mlx.Array, err error) {
	if err := b.validate(); err != nil {
		return 0, 0, nil, err
	}
	err = mlx.Do(func() error {
		scope := mlx.NewScope()
		defer scope.Close()
		bi := unpackBatch(b.arrays(t.opts.LossChunk))
		h := t.frozen(bi)
		params := t.adapters.Params()
		argnums := make([]int, len(params))
		for i := range argnums {
			argnums[i] = i
		}
		values, gs := mlx.ValueAndGrad(t.lossFunc(t.opts.LossChunk), argnums...)(append(append(slices.Clone(params), h), bi.lossArgs()...))
		mlx.Eval(append(gs, values...)...)
		mlx.Detach(gs...)
		grads = map[string]*mlx.Array{}
		for i, n := range t.adapters.ParamNames() {
			grads[n] = gs[i]
		}
		loss, tokens = values[0].Item(), int(values[1].Item())
		return nil
	})
	return loss, tokens, grads, err
}
