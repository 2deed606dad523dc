package mlxbackend

import (
	"context"
	"os"

	"github.com/yai-dev/yai/internal/ioerr"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// save-adapter: write adapters.safetensors and adapter_config.json (mlx-lm's layout), and the
// optimizer state when asked or when a guard is stopping the run, so it can resume.
func buildSaveAdapter(c *stages.SaveAdapterConfig, r *Training) (stage.Stage, error) {
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		if s.Figures.Rank > 0 {
			return nil // every rank holds the same adapters; rank 0 writes them
		}
		t, err := r.Trainer()
		if err != nil {
			return err
		}
		dir, err := s.OutputPath(c.Path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return ioerr.Writing("adapters", dir, err)
		}
		withState := c.Optimizer || (s.Stopping != nil && s.Stopping.Checkpoint)
		if withState {
			err = t.SaveState(dir)
		} else {
			err = t.SaveAdapters(dir)
		}
		if err != nil {
			return ioerr.Writing("adapters", dir, err)
		}
		s.Log.Info("adapters saved", "dir", dir, "optimizer_state", withState, "step", s.Figures.Step)
		return nil
	}), nil
}
