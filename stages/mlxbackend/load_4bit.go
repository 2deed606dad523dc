package mlxbackend

import (
	"context"
	"fmt"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// load-4bit: read the model's weights (quantized or not) and its tokenizer.
func buildLoad(c *stages.Load4BitConfig, r *Training) (stage.Stage, error) {
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		if r.info.ModelDir == "" {
			return fmt.Errorf("the recipe's model was not resolved")
		}
		before := mlx.Memory().Active
		dev := Device()
		var err error
		opts := model.LoadOptions{}
		// "checkpoint" keeps the file's dtypes; anything else names the dtype to convert to.
		if dt := c.ResolveDtype("checkpoint", dev.GPU()); dt != "checkpoint" {
			if opts.ComputeDtype, err = mlx.ParseDtype(dt); err != nil {
				return err
			}
		}
		m, err := model.Load(r.info.ModelDir, opts)
		if err != nil {
			return err
		}
		tok, err := tokenizer.Load(r.info.ModelDir)
		if err != nil {
			m.Free()
			return err
		}
		if r.model != nil {
			r.model.Free()
		}
		dense := c.Products(dev.Backend == "cuda", r.info.ProductsRoom)
		m.SetDenseProducts(dense.Blocks, dense.Head)
		r.model, r.tok = m, tok
		r.loaded = stages.Workload{}
		stages.Load4Bit.AddWorkload(c, &r.loaded)
		r.loaded.Products = dense // as resolved here, which the dry run's workload leaves to the plan
		s.Log.Info("model loaded", "dir", r.info.ModelDir, "layers", len(m.Layers),
			"weights", stages.Bytes(m.Nbytes()).String(),
			"mlx_active", stages.Bytes(int64(mlx.Memory().Active-before)).String(),
			"dequantized_products", fmt.Sprintf("blocks %v, head %v", dense.Blocks, dense.Head))
		return nil
	}), nil
}
