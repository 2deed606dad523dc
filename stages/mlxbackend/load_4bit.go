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

// load-4bit: read the model's weights (quantized or not) and its tokenizer, converted to the
// compute dtype and with the dequantized products the run's plan decided.
func buildLoad(c *stages.Load4BitConfig, r *Training) (stage.Stage, error) {
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		if r.info.ModelDir == "" {
			return fmt.Errorf("the recipe's model was not resolved")
		}
		plan := r.info.Decision
		if plan.ComputeDtype == "" {
			return fmt.Errorf("the run's plan decided no compute dtype: the model was not inspected")
		}
		before := mlx.Memory().Active
		var err error
		opts := model.LoadOptions{}
		if plan.Convert { // else the checkpoint's dtypes stay
			if opts.ComputeDtype, err = mlx.ParseDtype(plan.ComputeDtype); err != nil {
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
		dense := plan.Products
		adapted := 0
		if plan.Budget != nil {
			adapted = plan.Budget.Blocks
		}
		m.SetDenseProducts(dense.DenseBlocks(len(m.Layers), adapted), dense.Head)
		chunks := plan.Chunks // the plan applied sequence_chunks
		m.SetSequenceChunks(chunks.Attention, chunks.FeedForward)
		r.model, r.tok = m, tok
		s.Log.Info("model loaded", "dir", r.info.ModelDir, "layers", len(m.Layers),
			"weights", stages.Bytes(m.Nbytes()).String(),
			"mlx_active", stages.Bytes(int64(mlx.Memory().Active-before)).String(),
			"compute_dtype", fmt.Sprintf("%s (%s)", plan.ComputeDtype, c.ComputeDtype), "matmul", c.Matmul,
			"dequantized_products", fmt.Sprintf("%d blocks, head %v", dense.DenseBlocks(len(m.Layers), adapted), dense.Head),
			"sequence_chunks", fmt.Sprintf("%s: attention %d, mlp %d", c.SequenceChunks, chunks.Attention, chunks.FeedForward))
		return nil
	}), nil
}
