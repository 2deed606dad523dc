package model

import (
	"fmt"
	"sort"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// Model is a causal language model of any family modeldir describes. It owns its weights.
type Model struct {
	Config    *Config
	Embedding *Embedding
	Layers    []*Block
	Norm      *mlx.Array
	// LMHead projects onto the vocabulary; nil when the embeddings are tied.
	LMHead Linear

	// ropes are the rotary embeddings of the layers, one per distinct spec.
	ropeSpecs []modeldir.Rope
	ropes     []RoPE
	// compute is the dtype floating tensors were converted to at load (see
	// LoadOptions.ComputeDtype); Bool when they kept the checkpoint's.
	compute mlx.Dtype
	// slots are the weights by mlx-lm name, pointing into the layers above, with the shape
	// and dtype they were loaded with; Reload and Free go through them.
	slots map[string]*slot
}

type slot struct {
	ptr   **mlx.Array
	shape []int
	dtype mlx.Dtype
}

// Embed looks up token ids (B, L) int32 and returns hidden states (B, L, H), scaled where
// the family scales them (Gemma).
func (m *Model) Embed(tokens *mlx.Array) *mlx.Array {
	h := m.Embedding.Lookup(tokens)
	if m.Config.EmbedScale == 0 {
		return h
	}
	defer h.Free()
	return mlx.MulScalar(h, m.Config.EmbedScale)
}

// Head applies the final norm, projects onto the vocabulary and caps the logits where the
// family does (Gemma 2): (B, L, H) → (B, L, V).
func (m *Model) Head(h *mlx.Array) *mlx.Array {
	n := m.HeadNorm(h)
	z := m.Project(n)
	n.Free()
	logits, t := m.Softcap(z)
	t.Free()
	return logits
}

// Forward computes logits (B, L, V) for tokens (B, L). caches are optional: none for a
// pass over whole sequences (training, evaluation), or one per block (NewCaches) to
// continue from the positions they hold and append the new ones (prefill, decoding).
func (m *Model) Forward(tokens *mlx.Array, caches ...Cache) *mlx.Array {
	h := m.Hidden(tokens, caches...)
	defer h.Free()
	return m.Head(h)
}

// Hidden embeds tokens (B, L) and runs them through every block: the hidden states (B, L, H)
// the head takes. caches are as in Forward.
func (m *Model) Hidden(tokens *mlx.Array, caches ...Cache) *mlx.Array {
	if len(caches) != 0 && len(caches) != len(m.Layers) {
		panic(fmt.Sprintf("model: %d caches for %d blocks", len(caches), len(m.Layers)))
	}
	h := m.Embed(tokens)
	for i, layer := range m.Layers {
		var c Cache
		if caches != nil {
			c = caches[i]
		}
		next := layer.Forward(h, c, nil)
		h.Free()
		h = next
	}
	return h
}

// Parameters are the model's weights by mlx-lm name (model.embed_tokens.weight,
// model.layers.0.self_attn.q_proj.scales, lm_head.weight, …). Tensors not loaded are absent.
func (m *Model) Parameters() map[string]*mlx.Array {
	out := make(map[string]*mlx.Array, len(m.slots))
	for name, s := range m.slots {
		if *s.ptr != nil {
			out[name] = *s.ptr
		}
	}
	return out
}

// TensorNames lists every weight the model has, loaded or not, sorted.
func (m *Model) TensorNames() []string {
	names := make([]string, 0, len(m.slots))
	for name := range m.slots {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Nbytes is the size of the loaded weights.
func (m *Model) Nbytes() int {
	n := 0
	for _, a := range m.Parameters() {
		n += a.Nbytes()
	}
	return n
}

// FreeTensors frees the named weights, leaving them unloaded until Reload.
func (m *Model) FreeTensors(only func(name string) bool) {
	for name, s := range m.slots {
		if only(name) {
			(*s.ptr).Free()
			*s.ptr = nil
		}
	}
}

// Free releases every array the model owns. The model is unusable afterwards, except
// through Reload. Calling it twice does nothing.
func (m *Model) Free() {
	m.FreeTensors(func(string) bool { return true })
	for _, r := range m.ropes {
		r.Freqs.Free()
	}
	m.ropes, m.ropeSpecs = nil, nil
	for _, b := range m.Layers {
		if b.ffCheckpoint != nil {
			b.ffCheckpoint.Free()
			b.ffCheckpoint = nil
		}
	}
}
