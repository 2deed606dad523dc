package train

import (
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// The model forward pass of a step: the frozen blocks below the first adapted one, cut off
// from the gradient, then the adapted blocks (each under a checkpoint when the schedule
// says so) and the loss.

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
