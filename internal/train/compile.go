package train

import (
	"fmt"

	"github.com/yai-dev/yai/mlx"
)

// The compiled functions: one mlx.Compile per kind of function, loss chunk, prefix mode and
// schedule, each holding one trace per input shapes; rebuilt when the base weights change.

// ModelReloaded tells the trainer that base weights changed; the compiled step is rebuilt
// on the next call. Step notices reloads by itself, this only makes it explicit.
func (t *Trainer) ModelReloaded() {
	_ = mlx.Do(func() error { t.freeCompiled(); return nil })
}

func (t *Trainer) freeCompiled() {
	for k, c := range t.compiled {
		c.Free()
		delete(t.compiled, k)
	}
	t.compiledFor = nil
	clear(t.traces)
}

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
		fn = t.evalFunc(chunk, prefix)
	case "micro":
		fn = t.microFunc(chunk)
	case "finish-update":
		fn = t.finishFunc(true)
	case "finish-accumulate":
		fn = t.finishFunc(false)
	case "prefix":
		fn = func(in []*mlx.Array) []*mlx.Array { return []*mlx.Array{t.frozen(unpackBatch(in))} }
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
