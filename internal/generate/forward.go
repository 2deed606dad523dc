package generate

import (
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// decoder is a model with its caches: the model's own forward pass, each call continuing
// from the positions cached by the previous ones (mlx-lm's generate_step over a prompt
// cache).
type decoder struct {
	m      *model.Model
	caches model.Caches
}

// newDecoder prepares empty caches. Call on the MLX thread; free releases what it holds.
func newDecoder(m *model.Model) *decoder {
	return &decoder{m: m, caches: m.NewCaches()}
}

func (d *decoder) free() { d.caches.Free() }

// lastLogits is the logits of the last position, (B, V), as mlx-lm's logits[:, -1, :].
func (d *decoder) lastLogits(tokens *mlx.Array) *mlx.Array {
	logits := d.m.Forward(tokens, d.caches...)
	defer logits.Free()
	l := logits.Dim(1)
	if l == 1 {
		// One position (every decoding step): a reshape, no slice to copy through.
		return mlx.Reshape(logits, logits.Dim(0), -1)
	}
	last := mlx.SliceAxis(logits, 1, l-1, l)
	defer last.Free()
	return mlx.Squeeze(last, 1)
}
