package mlxbackend

import (
	"context"
	"errors"
	"strings"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// reload-selective: drop every array that is not training state, clear MLX's cache, and read
// back from the model files only the named tensors. Adapters, optimizer state, step, schedule
// and data position are untouched, so training continues exactly.
func buildReloadSelective(c *stages.ReloadSelectiveConfig, r *Training) (stage.Stage, error) {
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		if r.model == nil {
			return errors.New("no model loaded: a load-4bit stage must run first")
		}
		match := r.reloadMatcher(c.Tensors)
		before := mlx.Memory()
		liveBefore := mlx.LiveArrays()
		if r.trainer != nil {
			r.trainer.ModelReloaded() // compiled steps hold the old weights as constants
		}
		r.model.FreeTensors(match)
		if c.ClearCache {
			mlx.ClearCache()
		}
		if err := r.model.Reload(r.info.ModelDir, match); err != nil {
			return err
		}
		after := mlx.Memory()
		s.Note("reload_active_before", before.Active)
		s.Note("reload_active_after", after.Active)
		s.Log.Info("selective reload", "tensors", strings.Join(c.Tensors, ","),
			"mlx_active_before", stages.Bytes(before.Active).String(), "mlx_active_after", stages.Bytes(after.Active).String(),
			"mlx_cache_before", stages.Bytes(before.Cache).String(), "mlx_cache_after", stages.Bytes(after.Cache).String(),
			"arrays_before", liveBefore, "arrays_after", mlx.LiveArrays())
		return nil
	}), nil
}

// reloadMatcher selects tensor names: "targets" are the weights of the LoRA target modules,
// "head" the final norm and lm_head (or the tied embedding), anything else a name suffix.
func (r *Training) reloadMatcher(spec []string) func(name string) bool {
	var targets []string
	if r.trainer != nil {
		for _, n := range r.trainer.Adapters().Names {
			targets = append(targets, n+".")
		}
	}
	return func(name string) bool {
		for _, want := range spec {
			switch want {
			case "targets":
				for _, t := range targets {
					if strings.HasPrefix(name, t) {
						return true
					}
				}
			case "head":
				p := r.model.Config.Prefix
				if strings.HasPrefix(name, p+"lm_head.") || name == p+"model.norm.weight" ||
					(r.model.LMHead == nil && strings.HasPrefix(name, p+"model.embed_tokens.")) {
					return true
				}
			default:
				if modeldir.TensorMatches(name, want) {
					return true
				}
			}
		}
		return false
	}
}
