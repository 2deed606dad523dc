package mlxbackend

import (
	"context"
	"strings"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// attach-lora: fix the adapters' shape. They are created with the trainer, on first use,
// because the optimizer state is built from them.
func buildAttachLoRA(c *stages.AttachLoRAConfig, r *Training) (stage.Stage, error) {
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		keys := c.Keys
		if len(keys) == 0 && r.model != nil {
			keys = c.KeysFor(r.model.Config)
		}
		cfg := lora.Config{
			Keys:      keys, // bare names (q_proj) are qualified by lora.Attach
			NumLayers: c.Layers,
			Rank:      c.Rank,
			Alpha:     c.Alpha,
			Dropout:   c.Dropout,
			Seed:      uint64(r.info.Seed),
		}
		r.lora = &cfg
		t, err := r.Trainer()
		if err != nil {
			return err
		}
		a := t.Adapters()
		s.Log.Info("adapters attached", "modules", len(a.Names), "rank", a.Config.Rank,
			"scale", a.Config.Scale, "layers", a.Config.NumLayers, "keys", strings.Join(a.Config.Keys, ","))
		return nil
	}), nil
}
