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
	// SeparatePrefix evaluates the frozen prefix (the embedding and the blocks before the
	// first adapted one) on its own, to the end, before the rest of a whole-batch step. On a
	// GPU MLX runs ahead of the device: the dequantized copies of the frozen blocks'
	// products are freed only once the device has run them, so in one graph they can still
	// be alive when the backward allocates (the likely cause of steps over the limit seen on
	// an H100). Apart, they are gone before the backward starts. The losses are the same.
	SeparatePrefix bool
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
	for i, block := range a.Blocks {
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
		var separate *mlx.Array // the frozen prefix, evaluated apart (SeparatePrefix)
		if parts == nil && prefix == prefixNone && t.opts.SeparatePrefix && t.firstBlock > 0 {
			separate = t.closure("prefix", prefixNone)(arrays)[0]
			mlx.Eval(separate)
			prefix = prefixUse
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
			switch {
			case separate != nil:
				in = append(in, separate)
			case prefix == prefixUse:
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
