// Package train runs LoRA fine-tuning steps the way mlx_lm.lora does: mlx-lm's masked
// cross-entropy, value-and-grad over the adapter parameters only, gradient accumulation,
// optional per-block gradient checkpointing, and one compiled step over explicit state.
//
// The compiled step takes the adapter parameters, optimizer state, accumulated gradients,
// learning rate, step count, dropout key and batch as inputs and returns the new
// parameters, new state and loss; those are evaluated every step and everything else the
// step made is freed by a scope, so live arrays and MLX memory stay flat.
//
// The blocks below the first adapted block run outside the differentiated function and
// their output passes through StopGradient, so no backward graph is ever built for them.
//
// Base weights are captured by the compiled step as constants, not passed as inputs.
// After model.Reload swaps base tensors, the trainer notices (it compares the model's
// arrays with those it compiled against) and rebuilds its compiled functions before the
// next step, so the fresh weights are used and the old ones are released; ModelReloaded
// does the same explicitly.
package train

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/mlx"
)

// Options tune how steps run.
type Options struct {
	// GradAccumulation is the number of steps whose gradients are averaged into one
	// optimizer update (mlx-lm's grad_accumulation_steps); 0 means 1.
	GradAccumulation int
	// GradCheckpoint recomputes each adapted block's activations in the backward pass
	// instead of keeping them: less memory, about a third more compute.
	GradCheckpoint bool
	// Eager runs the step without mlx.Compile (for debugging and comparison).
	Eager bool
	// Seed drives the dropout masks.
	Seed uint64
	// LossChunk bounds the positions whose logits exist at once: the head and cross-entropy
	// run on the counted targets only, this many at a time (see chunkedLoss). 0 runs them
	// in one chunk. SetLossChunk changes it between steps.
	LossChunk int
	// PrefixCache bounds the bytes of hidden states kept per batch at the first adapted
	// block (see prefix_cache.go); 0 turns the cache off. Batches are cached by Batch.Key.
	PrefixCache int64
	// AllReduce, when set, makes updates data-parallel. It is given this process's gradient
	// sums (gradients of the summed token losses), summed loss and token count, and returns
	// their sums over every process (AllSumOver); the update applies the summed gradients
	// over the summed tokens, which is the single-process update on all the processes'
	// batches together. A step that is not finite on one process is applied on none.
	AllReduce func(xs []*mlx.Array) []*mlx.Array
}

// StepResult reports one training step.
type StepResult struct {
	Loss    float64 // mean loss over the batch's counted tokens
	Tokens  int     // tokens counted by the loss
	LR      float64 // learning rate of the update this step feeds
	Updated bool    // whether this step applied an optimizer update
	// Finite is false when the loss or a gradient was NaN or infinite. Nothing of such a
	// step is applied: parameters, optimizer state and accumulated gradients stay as they
	// were, and no update is counted (the batch is consumed all the same).
	Finite  bool
	Step    int // steps run so far, this one included
	Updates int // optimizer updates applied so far
	// Traces is the number of compiled traces the trainer holds: one per compiled function,
	// loss chunk and input shape seen (see data.LossPositions and Bucket for the bound).
	Traces int
}

// Trainer trains a model's LoRA adapters one step at a time. Its methods may be called from
// any goroutine (they run on the MLX thread) but not concurrently.
type Trainer struct {
	model    *model.Model
	adapters *lora.Adapters
	opt      *optim.Optimizer
	opts     Options

	state   []*mlx.Array // optimizer state, len(Slots()) per parameter
	accum   []*mlx.Array // gradient sum of the pending accumulation, nil when none
	key     *mlx.Array   // dropout PRNG key
	steps   int          // steps run
	updates int          // optimizer updates applied (mlx's optimizer step)

	firstBlock  int
	blockLayers map[int][]int // adapted block → indices into adapters.Layers
	checkpoints map[int]*mlx.Closure
	compiled    map[string]*mlx.Closure // by function and loss chunk
	compiledFor map[string]*mlx.Array   // model arrays the compiled functions captured
	traces      map[string]bool         // function, loss chunk and input shapes traced
	prefix      *prefixCache            // nil when off
	sched       memplan.Schedule        // how steps are computed now
}

// NewTrainer attaches fresh adapters described by loraCfg to m and prepares the optimizer.
// The trainer owns the adapters: Close detaches them, so save them first.
func NewTrainer(m *model.Model, loraCfg lora.Config, optCfg optim.Config, opts Options) (*Trainer, error) {
	a, err := lora.Attach(m.Layers, loraCfg)
	if err != nil {
		return nil, err
	}
	t, err := NewTrainerWithAdapters(m, a, optCfg, opts)
	if err != nil {
		a.Detach()
		return nil, err
	}
	return t, nil
}

// NewTrainerWithAdapters trains adapters already attached to m (lora.Load, to resume from
// saved adapters). The trainer takes ownership of them.
func NewTrainerWithAdapters(m *model.Model, a *lora.Adapters, optCfg optim.Config, opts Options) (*Trainer, error) {
	opt, err := optim.New(optCfg)
	if err != nil {
		return nil, err
	}
	if opts.GradAccumulation == 0 {
		opts.GradAccumulation = 1
	}
	if opts.GradAccumulation < 1 {
		return nil, fmt.Errorf("train: grad_accumulation_steps must be at least 1, got %d", opts.GradAccumulation)
	}
	if opts.AllReduce != nil && opts.GradAccumulation > 1 {
		// Accumulated micro-batches are averaged per micro-batch, not per token, so their
		// sum across processes would not be the single-process update.
		return nil, errors.New("train: a data-parallel trainer needs grad_accumulation_steps 1")
	}
	t := &Trainer{
		model: m, adapters: a, opt: opt, opts: opts,
		firstBlock:  a.FirstBlock(len(m.Layers)),
		blockLayers: map[int][]int{},
		checkpoints: map[int]*mlx.Closure{},
		compiled:    map[string]*mlx.Closure{},
		traces:      map[string]bool{},
		sched:       memplan.Schedule{MicroBatches: 1, GradCheckpoint: opts.GradCheckpoint},
	}
	if opts.PrefixCache > 0 {
		t.prefix = newPrefixCache(opts.PrefixCache)
	}
	for i, name := range a.Names {
		var block int
		fmt.Sscanf(name, "model.layers.%d.", &block)
		t.blockLayers[block] = append(t.blockLayers[block], i)
	}
	err = mlx.Do(func() error {
		t.state = opt.Init(a.Params())
		t.key = mlx.RandomKey(opts.Seed)
		mlx.Eval(append(slices.Clone(t.state), t.key)...)
		mlx.Detach(t.state...)
		mlx.Detach(t.key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Adapters are the adapters being trained.
func (t *Trainer) Adapters() *lora.Adapters { return t.adapters }

// Steps is the number of steps run; Updates the number of optimizer updates applied.
func (t *Trainer) Steps() int   { return t.steps }
func (t *Trainer) Updates() int { return t.updates }

// SaveAdapters writes adapters.safetensors and adapter_config.json (mlx-lm's layout) to dir.
func (t *Trainer) SaveAdapters(dir string) error { return t.adapters.Save(dir) }

// ModelReloaded tells the trainer that base weights changed; the compiled step is rebuilt
// on the next call. Step notices reloads by itself, this only makes it explicit.
func (t *Trainer) ModelReloaded() {
	_ = mlx.Do(func() error { t.freeCompiled(); return nil })
}

// Close frees the trainer's state and compiled functions and detaches the adapters from
// the model, which is left as it was before NewTrainer.
func (t *Trainer) Close() {
	_ = mlx.Do(func() error {
		t.freeCompiled()
		t.prefix.free()
		for _, c := range t.checkpoints {
			c.Free()
		}
		t.checkpoints = map[int]*mlx.Closure{}
		mlx.Free(t.state...)
		mlx.Free(t.accum...)
		t.key.Free()
		t.state, t.accum = nil, nil
		t.adapters.Detach()
		return nil
	})
}

func (t *Trainer) freeCompiled() {
	for k, c := range t.compiled {
		c.Free()
		delete(t.compiled, k)
	}
	t.compiledFor = nil
	clear(t.traces)
}

// SetSchedule changes how the following steps are computed; their results stay the same.
func (t *Trainer) SetSchedule(s memplan.Schedule) {
	s.MicroBatches = max(1, s.MicroBatches)
	t.sched = s
}

// Schedule is how steps are computed now.
func (t *Trainer) Schedule() memplan.Schedule { return t.sched }

// SetLossChunk changes the number of loss positions whose logits exist at once (0: all of
// them) for the steps that follow. Each distinct value is compiled once and kept, so moving
// back and forth between values does not recompile.
func (t *Trainer) SetLossChunk(n int) { t.opts.LossChunk = max(0, n) }

// LossChunk is the current loss chunk (see Options.LossChunk).
func (t *Trainer) LossChunk() int { return t.opts.LossChunk }

// Traces is the number of compiled traces held (see StepResult.Traces).
func (t *Trainer) Traces() int { return len(t.traces) }

// baseChanged reports whether the model's arrays differ from those the compiled step
// captured (a Reload or FreeTensors since).
func (t *Trainer) baseChanged() bool {
	if t.compiledFor == nil {
		return false
	}
	now := t.model.Parameters()
	if len(now) != len(t.compiledFor) {
		return true
	}
	for k, a := range now {
		if t.compiledFor[k] != a {
			return true
		}
	}
	return false
}

// closure returns the compiled (or, with Eager, plain) function for kind, building it when
// needed.
func (t *Trainer) closure(kind string, prefix prefixMode) func(in []*mlx.Array) []*mlx.Array {
	chunk := t.opts.LossChunk
	var fn mlx.Func
	switch kind {
	case "update":
		fn = t.stepFunc(true, chunk, prefix)
	case "accumulate":
		fn = t.stepFunc(false, chunk, prefix)
	case "eval":
		fn = t.evalFunc(chunk)
	case "micro":
		fn = t.microFunc(chunk)
	case "finish-update":
		fn = t.finishFunc(true)
	case "finish-accumulate":
		fn = t.finishFunc(false)
	}
	key := fmt.Sprintf("%s/%d/%d", kind, chunk, prefix)
	if t.sched.GradCheckpoint && kind != "eval" {
		key += "+checkpoint" // traced with the other schedule, so compiled apart
	}
	if t.opts.Eager {
		return fn
	}
	if t.baseChanged() {
		t.freeCompiled()
	}
	c, ok := t.compiled[key]
	if !ok {
		c = mlx.Compile(fn, false)
		t.compiled[key] = c
		if t.compiledFor == nil {
			t.compiledFor = t.model.Parameters()
		}
	}
	return func(in []*mlx.Array) []*mlx.Array {
		// MLX keeps one trace per number and shapes of inputs.
		sig := key
		for _, a := range in {
			sig += fmt.Sprint(a.Shape())
		}
		t.traces[sig] = true
		return c.Call(in...)
	}
}

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
	for i := range newParams {
		newParams[i] = mlx.Where(finite, newParams[i], params[i])
	}
	for i := range newState {
		newState[i] = mlx.Where(finite, newState[i], state[i])
	}
	out := append(newParams, newState...)
	return append(out, loss, ntoks, finite)
}

// reduceAcross turns this process's mean gradients and loss into the token-weighted means
// over every process: sum over processes of (mean × tokens), over the summed tokens.
func (t *Trainer) reduceAcross(grads []*mlx.Array, loss, ntoks *mlx.Array) ([]*mlx.Array, *mlx.Array, *mlx.Array, *mlx.Array) {
	w := mlx.AsType(ntoks, mlx.Float32)
	xs := make([]*mlx.Array, 0, len(grads)+2)
	for _, g := range grads {
		xs = append(xs, mlx.Multiply(g, w))
	}
	xs = append(xs, mlx.Multiply(loss, w), w)
	sums := t.opts.AllReduce(xs)
	total := sums[len(sums)-1]
	out := make([]*mlx.Array, len(grads))
	for i := range grads {
		out[i] = mlx.Divide(sums[i], total)
	}
	mean := mlx.Divide(sums[len(grads)], total)
	// A sum holding a NaN or an infinity is one on every process, so all agree.
	return out, mean, mlx.AsType(total, ntoks.Dtype()), allFinite(append([]*mlx.Array{mean}, out...))
}

// microFunc is one part of a split batch: [params…, key?, batch arrays…] → [loss × tokens,
// tokens, gradients of loss × tokens…]. Summed over the parts and divided by the total token
// count, these are exactly the whole batch's loss and gradients.
func (t *Trainer) microFunc(chunk int) mlx.Func {
	return func(in []*mlx.Array) []*mlx.Array {
		np := 2 * len(t.adapters.Layers)
		var key *mlx.Array
		batch := in[np:]
		if t.adapters.HasDropout() {
			key, batch = batch[0], batch[1:]
		}
		loss, ntoks, grads, _ := t.gradients(in[:np], key, batch, nil, prefixNone, chunk)
		n := mlx.AsType(ntoks, loss.Dtype())
		out := []*mlx.Array{mlx.Multiply(loss, n), ntoks}
		for _, g := range grads {
			out = append(out, mlx.Multiply(g, mlx.AsType(n, g.Dtype())))
		}
		return out
	}
}

// finishFunc completes a split step: its inputs are the step layout's params, state,
// accumulation, learning rate and step count, then the summed parts [loss sum, tokens,
// gradient sums…]; its outputs are stepFunc's.
func (t *Trainer) finishFunc(update bool) mlx.Func {
	return func(in []*mlx.Array) []*mlx.Array {
		l := t.finishLayout(update)
		sums := in[l.batch:]
		n := sums[1]
		loss := mlx.Divide(sums[0], mlx.AsType(n, sums[0].Dtype()))
		grads := make([]*mlx.Array, len(sums)-2)
		for i, g := range sums[2:] {
			grads[i] = mlx.Divide(g, mlx.AsType(n, g.Dtype()))
		}
		return t.finish(update, l, in, loss, n, grads)
	}
}

// finishLayout is the step layout without the key; the sums start where the batch would.
func (t *Trainer) finishLayout(update bool) layout {
	l := t.layout(update)
	if l.key >= 0 {
		l.batch, l.key = l.key, -1
	}
	return l
}

// splitSums runs the parts of a split batch one after the other, each evaluated and freed
// before the next so that only one part's activations are ever alive, and returns the sums
// [loss × tokens, tokens, gradients of loss × tokens…] over the parts.
func (t *Trainer) splitSums(params []*mlx.Array, key *mlx.Array, parts []Batch) []*mlx.Array {
	var keys []*mlx.Array
	if key != nil {
		all := mlx.RandomSplit(key, max(len(parts), 2))
		for i := range parts {
			keys = append(keys, mlx.Squeeze(mlx.SliceAxis(all, 0, i, i+1), 0))
		}
	}
	micro := t.closure("micro", prefixNone)
	var sums []*mlx.Array
	for i, p := range parts {
		inner := mlx.NewScope()
		in := slices.Clone(params)
		if keys != nil {
			in = append(in, keys[i])
		}
		out := micro(append(in, p.arrays(t.opts.LossChunk)...))
		if sums != nil {
			for j := range out {
				out[j] = mlx.Add(sums[j], out[j])
			}
		}
		mlx.Eval(out...)
		inner.Keep(out...)
		inner.Close()
		mlx.Free(sums...)
		sums = out
	}
	return sums
}

// evalFunc is the loss without gradients and without dropout: inputs are the params, the
// tokens, the loss positions and their weights.
func (t *Trainer) evalFunc(chunk int) mlx.Func {
	return func(in []*mlx.Array) []*mlx.Array {
		np := 2 * len(t.adapters.Layers)
		bi := unpackBatch(in[np:])
		h := t.frozen(bi)
		return t.forwardLoss(append(append(slices.Clone(in[:np]), h), bi.lossArgs()...), chunk, false)
	}
}

func splitTokens(tokens *mlx.Array) (inputs, targets *mlx.Array) {
	n := tokens.Dim(1)
	return mlx.SliceAxis(tokens, 1, 0, n-1), mlx.SliceAxis(tokens, 1, 1, n)
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

// frozen embeds the inputs and runs the blocks below the first adapted one, cut off from
// the gradient.
func (t *Trainer) frozen(bi batchInputs) *mlx.Array {
	h := t.model.Embed(bi.inputs)
	p := bi.packing()
	defer p.Free()
	for _, b := range t.model.Layers[:t.firstBlock] {
		next := b.Forward(h, nil, p)
		h.Free()
		h = next
	}
	defer h.Free()
	return mlx.StopGradient(h)
}

// lossFunc runs the adapted blocks and the head on [params…, h, targets, picks, weights]
// and returns [loss, ntoks]; it is what value_and_grad differentiates.
func (t *Trainer) lossFunc(chunk int) mlx.Func {
	return func(in []*mlx.Array) []*mlx.Array { return t.forwardLoss(in, chunk, true) }
}

// forwardLoss is lossFunc's body; without grad the loss carries no gradient term.
func (t *Trainer) forwardLoss(in []*mlx.Array, chunk int, grad bool) []*mlx.Array {
	np := 2 * len(t.adapters.Layers)
	previous := t.adapters.Swap(in[:np])
	defer t.adapters.Swap(previous)
	h, targets, picks, weights := in[np], in[np+1], in[np+2], in[np+3]
	var p *model.Packing
	if len(in) > np+4 {
		p = model.NewPacking(in[np+5], in[np+4])
		defer p.Free()
	}
	owned := false
	for i := t.firstBlock; i < len(t.model.Layers); i++ {
		var next *mlx.Array
		if t.sched.GradCheckpoint {
			next = t.checkpointed(i, h, p)
		} else {
			next = t.model.Layers[i].Forward(h, nil, p)
		}
		if owned {
			h.Free()
		}
		h, owned = next, true
	}
	loss, ntoks := chunkedLoss(t.model, h, targets, picks, weights, chunk, grad)
	if owned {
		h.Free()
	}
	return []*mlx.Array{loss, ntoks}
}

// checkpointed runs block i under mlx.Checkpoint with its adapter parameters (and, for
// packed rows, the positions and mask) as explicit inputs, so the backward pass recomputes
// the block instead of keeping its activations.
func (t *Trainer) checkpointed(i int, h *mlx.Array, p *model.Packing) *mlx.Array {
	layers := t.blockLayers[i]
	extra := 0
	if p != nil {
		extra = 2
	}
	key := 2*i + extra/2
	c, ok := t.checkpoints[key]
	if !ok {
		block := t.model.Layers[i]
		c = mlx.Checkpoint(func(in []*mlx.Array) []*mlx.Array {
			saved := make([]*mlx.Array, 0, 2*len(layers))
			for j, li := range layers {
				l := t.adapters.Layers[li]
				saved = append(saved, l.A, l.B)
				l.A, l.B = in[1+extra+2*j], in[2+extra+2*j]
			}
			defer func() {
				for j, li := range layers {
					l := t.adapters.Layers[li]
					l.A, l.B = saved[2*j], saved[2*j+1]
				}
			}()
			var packed *model.Packing
			if extra > 0 {
				packed = &model.Packing{Positions: in[1], Mask: in[2]}
			}
			return []*mlx.Array{block.Forward(in[0], nil, packed)}
		})
		t.checkpoints[key] = c
	}
	in := []*mlx.Array{h}
	if p != nil {
		in = append(in, p.Positions, p.Mask)
	}
	for _, li := range layers {
		l := t.adapters.Layers[li]
		in = append(in, l.A, l.B)
	}
	return c.Call(in...)[0]
}

// Step runs one training step on b: forward, backward, and an optimizer update when the
// accumulation is complete. Parameters, optimizer state and loss are evaluated before it
// returns; nothing else the step made survives it.
func (t *Trainer) Step(b Batch) (StepResult, error) {
	if err := b.validate(); err != nil {
		return StepResult{}, err
	}
	var res StepResult
	err := mlx.Do(func() error {
		scope := mlx.NewScope()
		defer scope.Close()
		update := (t.steps+1)%t.opts.GradAccumulation == 0
		kind := "accumulate"
		if update {
			kind = "update"
		}
		parts := b.Parts(t.sched.MicroBatches)
		var arrays []*mlx.Array
		prefix := prefixNone
		if len(parts) == 1 || t.prefix != nil {
			parts = nil // whole: the prefix cache holds whole batches
			arrays = b.arrays(t.opts.LossChunk)
			prefix = t.prefix.mode(b.Key, t.prefixBytes(b, arrays[0]))
		}
		lr := t.opt.Config().LearningRateAt(t.updates)
		params := t.adapters.Params()
		in := slices.Clone(params)
		if update {
			in = append(in, t.state...)
		}
		if t.opts.GradAccumulation > 1 {
			if t.accum == nil {
				for _, p := range params {
					in = append(in, mlx.Zeros(p.Shape(), p.Dtype()))
				}
			} else {
				in = append(in, t.accum...)
			}
		}
		if update {
			in = append(in, mlx.Scalar(float64(lr), mlx.Float32), mlx.Scalar(float64(t.updates+1), mlx.Float32))
		}
		// The dropout key moves on only when the step succeeds, so a step that fails (to
		// allocate, say) can be run again with the same masks.
		var key, nextKey *mlx.Array
		if t.adapters.HasDropout() {
			nextKey, key = mlx.SplitKey(t.key)
			mlx.Detach(nextKey)
			defer func() {
				if nextKey != nil {
					nextKey.Free()
				}
			}()
		}
		var out []*mlx.Array
		if parts != nil {
			out = t.closure("finish-"+kind, prefixNone)(append(in, t.splitSums(params, key, parts)...))
		} else {
			if key != nil {
				in = append(in, key)
			}
			in = append(in, arrays...)
			if prefix == prefixUse {
				in = append(in, t.prefix.entries[b.Key])
			}
			out = t.closure(kind, prefix)(in)
		}
		var cached *mlx.Array
		if prefix == prefixFill {
			cached, out = out[len(out)-1], out[:len(out)-1]
		}
		np := len(params)
		var loss, ntoks, finite *mlx.Array
		if update {
			newParams := out[:np]
			newState := out[np : np+len(t.state)]
			loss, ntoks, finite = out[np+len(t.state)], out[np+len(t.state)+1], out[np+len(t.state)+2]
			mlx.Eval(append(append(slices.Clone(newParams), newState...), loss, ntoks, finite, cached)...)
			mlx.Detach(newParams...)
			mlx.Detach(newState...)
			t.adapters.Replace(newParams)
			mlx.Free(t.state...)
			t.state = newState
			mlx.Free(t.accum...)
			t.accum = nil
		} else {
			loss, ntoks, finite = out[0], out[1], out[2]
			grads := out[3:]
			mlx.Eval(append(slices.Clone(grads), loss, ntoks, finite, cached)...)
			mlx.Detach(grads...)
			mlx.Free(t.accum...)
			t.accum = grads
		}
		if cached != nil {
			mlx.Detach(cached)
			t.prefix.put(b.Key, cached)
		}
		if nextKey != nil {
			t.key.Free()
			t.key, nextKey = nextKey, nil
		}
		ok := finite.Item() != 0
		if update && ok {
			t.updates++
		}
		t.steps++
		res = StepResult{
			Loss: loss.Item(), Tokens: int(ntoks.Item()), LR: float64(lr),
			Updated: update && ok, Finite: ok, Step: t.steps, Updates: t.updates, Traces: len(t.traces),
		}
		return nil
	})
	if err != nil {
		return StepResult{}, err
	}
	return res, nil
}

// Evaluate is mlx-lm's evaluate: the token-weighted mean loss over batches, without
// dropout or gradients.
func (t *Trainer) Evaluate(batches []Batch) (float64, error) {
	var avg float64
	err := mlx.Do(func() error {
		scope := mlx.NewScope()
		defer scope.Close()
		total := mlx.Scalar(0, mlx.Float32)
		count := mlx.Scalar(0, mlx.Int32)
		fn := t.closure("eval", prefixNone)
		for _, b := range batches {
			if err := b.validate(); err != nil {
				return err
			}
			inner := mlx.NewScope()
			out := fn(append(slices.Clone(t.adapters.Params()), b.arrays(t.opts.LossChunk)...))
			weighted := mlx.Multiply(out[0], out[1])
			newTotal := mlx.Add(total, weighted)
			newCount := mlx.Add(count, out[1])
			mlx.Eval(newTotal, newCount)
			inner.Keep(newTotal, newCount)
			inner.Close()
			mlx.Free(total, count)
			total, count = newTotal, newCount
		}
		if len(batches) == 0 {
			return fmt.Errorf("train: no batches to evaluate")
		}
		mean := mlx.Divide(total, count)
		avg = mean.Item()
		return nil
	})
	return avg, err
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

// allFinite is a scalar that is true when no element of xs is NaN or infinite.
func allFinite(xs []*mlx.Array) *mlx.Array {
	var ok *mlx.Array
	for _, x := range xs {
		inf := mlx.Scalar(math.Inf(1), x.Dtype())
		f := mlx.All(mlx.Less(mlx.Abs(x), inf), false)
		if ok == nil {
			ok = f
		} else {
			ok = mlx.LogicalAnd(ok, f)
		}
	}
	return ok
}

// prefixBytes is the size of the hidden states entering the first adapted block for b,
// whose model inputs are tokens: (rows, input columns, hidden).
func (t *Trainer) prefixBytes(b Batch, tokens *mlx.Array) int64 {
	rows, cols := tokens.Dim(0), tokens.Dim(1)
	if b.Segments == nil {
		cols-- // plain rows: the inputs drop the last token
	}
	return int64(rows) * int64(cols) * int64(t.model.Config.HiddenSize) * int64(t.model.Embedding.OutputDtype().Size())
}

// PrefixCacheBytes is the memory the prefix cache holds (0 when off).
func (t *Trainer) PrefixCacheBytes() int64 { return t.prefix.Bytes() }
