package train

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/mlx"
)

// StateFile holds the optimizer state, pending accumulated gradients and counters beside
// the adapters in a checkpoint directory.
const StateFile = "optimizer.safetensors"

// SaveState writes a checkpoint to dir: the adapters (mlx-lm's files) and StateFile, each
// atomically. LoadState on a trainer built with the same configuration resumes from it
// exactly.
func (t *Trainer) SaveState(dir string) error {
	if err := t.adapters.Save(dir); err != nil {
		return err
	}
	tensors := map[string]*mlx.Array{"rng_key": t.key}
	slots := t.opt.Slots()
	for i, name := range t.adapters.ParamNames() {
		for j, s := range slots {
			tensors[name+"."+s] = t.state[i*len(slots)+j]
		}
		if t.accum != nil {
			tensors[name+".grad_accum"] = t.accum[i]
		}
	}
	meta := map[string]string{
		"optimizer": t.opt.Config().Name,
		"steps":     strconv.Itoa(t.steps),
		"updates":   strconv.Itoa(t.updates),
	}
	return mlx.SaveSafetensors(filepath.Join(dir, StateFile), tensors, meta)
}

// LoadState restores adapters, optimizer state and counters saved by SaveState.
func (t *Trainer) LoadState(dir string) error {
	path := filepath.Join(dir, StateFile)
	tensors, meta, err := mlx.LoadSafetensors(path)
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	take := func(name string) (*mlx.Array, error) {
		a, ok := tensors[name]
		if !ok {
			return nil, fmt.Errorf("train: %s: %s is missing", path, name)
		}
		taken[name] = true
		return a, nil
	}
	err = func() error {
		if meta["optimizer"] != t.opt.Config().Name {
			return fmt.Errorf("train: %s was saved by optimizer %q, this trainer uses %q", path, meta["optimizer"], t.opt.Config().Name)
		}
		steps, err1 := strconv.Atoi(meta["steps"])
		updates, err2 := strconv.Atoi(meta["updates"])
		if err1 != nil || err2 != nil || steps < 0 || updates < 0 || updates > steps {
			return fmt.Errorf("train: %s: bad step counters: steps %q, updates %q", path, meta["steps"], meta["updates"])
		}
		slots := t.opt.Slots()
		params := t.adapters.Params()
		state := make([]*mlx.Array, 0, len(t.state))
		var accum []*mlx.Array
		for i, name := range t.adapters.ParamNames() {
			for _, s := range slots {
				a, err := take(name + "." + s)
				if err != nil {
					return err
				}
				if !slices.Equal(a.Shape(), params[i].Shape()) {
					return fmt.Errorf("train: %s: %s.%s has shape %v, the parameter %v", path, name, s, a.Shape(), params[i].Shape())
				}
				state = append(state, a)
			}
			if a, ok := tensors[name+".grad_accum"]; ok {
				taken[name+".grad_accum"] = true
				if !slices.Equal(a.Shape(), params[i].Shape()) {
					return fmt.Errorf("train: %s: %s.grad_accum has shape %v, the parameter %v", path, name, a.Shape(), params[i].Shape())
				}
				accum = append(accum, a)
			}
		}
		if accum != nil && len(accum) != len(params) {
			return fmt.Errorf("train: %s: accumulated gradients for only some parameters", path)
		}
		key, err := take("rng_key")
		if err != nil {
			return err
		}
		var names []string
		var all []*mlx.Array
		for n := range tensors {
			if taken[n] {
				names = append(names, n)
			}
		}
		slices.Sort(names) // the error lists them in order
		for _, n := range names {
			all = append(all, tensors[n])
		}
		if err := lora.CheckFinite(path, names, all); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if err := t.adapters.LoadWeights(filepath.Join(dir, lora.WeightsFile)); err != nil {
			return err
		}
		return mlx.Do(func() error {
			all := append(append(slices.Clone(state), accum...), key)
			mlx.Eval(all...)
			mlx.Free(t.state...)
			mlx.Free(t.accum...)
			t.key.Free()
			t.state, t.accum, t.key = state, accum, key
			t.steps, t.updates = steps, updates
			return nil
		})
	}()
	for name, a := range tensors {
		if err != nil || !taken[name] {
			a.Free()
		}
	}
	return err
}
