package memplan

import (
	"encoding/json"
	"testing"

	"github.com/yai-dev/yai/modeldir"
)

// moeInfo is the headers of a 4-bit Qwen3-MoE (group 64, bfloat16 scales) whose blocks
// alternate dense and sparse (decoder_sparse_step 2), as its layout binds them.
func moeInfo(t *testing.T, experts, perToken int) *modeldir.Info {
	t.Helper()
	js, _ := json.Marshal(map[string]any{"model_type": "qwen3_moe", "hidden_size": 2048, "num_hidden_layers": 4,
		"intermediate_size": 6144, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "vocab_size": 151936,
		"rms_norm_eps": 1e-6, "num_experts": experts, "num_experts_per_tok": perToken, "moe_intermediate_size": 768,
		"decoder_sparse_step": 2, "mlp_only_layers": []int{}, "norm_topk_prob": true, "rope_theta": 1e6,
		"tie_word_embeddings": false, "max_position_embeddings": 4096, "quantization": map[string]int{"group_size": 64, "bits": 4}})
	c, err := modeldir.ParseConfig(js)
	if err != nil {
		t.Fatal(err)
	}
	info := &modeldir.Info{Dir: t.TempDir(), Config: c, Tensors: map[string]modeldir.TensorInfo{}}
	add := func(name, dtype string, shape ...int) {
		s := make([]int64, len(shape))
		n, size := int64(1), map[string]int64{"U32": 4, "BF16": 2}[dtype]
		for i, d := range shape {
			s[i], n = int64(d), n*int64(d)
		}
		info.Tensors[name] = modeldir.TensorInfo{Dtype: dtype, Shape: s, DataOffsets: [2]int64{0, n * size}}
	}
	for _, m := range c.Layout().Modules() {
		if m.Kind == modeldir.NormModule {
			add(m.Path+".weight", "BF16", m.Out)
			continue
		}
		var lead []int
		if m.Experts > 0 {
			lead = []int{m.Experts}
		}
		add(m.Path+".weight", "U32", append(lead, m.Out, m.In/8)...)
		add(m.Path+".scales", "BF16", append(lead, m.Out, m.In/64)...)
		add(m.Path+".biases", "BF16", append(lead, m.Out, m.In/64)...)
	}
	if problems := info.Check(); len(problems) > 0 {
		t.Fatalf("the headers do not bind: %v", problems)
	}
	return info
}

func moeWorkload(keys ...string) Workload {
	return Workload{Rank: 8, Layers: 2, Keys: keys, BatchSize: 2, MaxSeqLength: 512, Optimizer: "adamw", Accumulation: 1, LossChunk: 512}
}

// Experts' adapters are counted at mlx-lm's LoRASwitchLinear shapes, one per expert; a bare
// key adapts what each block has (a dense block's gate_proj, a sparse block's stack).
func TestMoELoRAParameters(t *testing.T) {
	info := moeInfo(t, 16, 4)
	d := Decision{Device: Device{Backend: "cpu", Name: "CPU"}, ComputeDtype: "bfloat16"}
	b := d.estimate(info, moeWorkload("gate_proj"))
	// Block 2 is dense: gate_proj (2048 → 6144); block 3 a mixture: 16 × (2048 → 768).
	want := int64(8*(2048+6144)*4 + 16*8*(2048+768)*4)
	if b.LoRA != want || b.Modules != 2 {
		t.Errorf("LoRA %d bytes in %d modules, want %d in 2", b.LoRA, b.Modules, want)
	}
	if g := d.estimate(info, moeWorkload("mlp.gate")); g.LoRA != 8*(2048+16)*4 {
		t.Errorf("router LoRA %d bytes, want %d", g.LoRA, 8*(2048+16)*4)
	}
}

// A mixture's activations follow the experts each token runs through, not how many there
// are: 4 times the experts at the same top-k adds only the router's scores (and the
// weights), while twice the top-k adds a step's worth of expert activations.
func TestMoEActivationsFollowTopK(t *testing.T) {
	d := Decision{Device: Device{Backend: "cpu", Name: "CPU"}, ComputeDtype: "bfloat16"}
	w := moeWorkload("q_proj", "switch_mlp.down_proj")
	base := d.estimate(moeInfo(t, 16, 4), w)
	more := d.estimate(moeInfo(t, 64, 4), w)
	topK := d.estimate(moeInfo(t, 16, 8), w)
	tokens := int64(base.Tokens)
	router := 2 * tokens * (64 - 16) * 2 // gates and probabilities, bfloat16
	// The experts' adapters and their gradients grow with the experts too.
	grads := int64(64-16) * 8 * (768 + 2048) * 4
	if diff := more.Activations - base.Activations; diff > router+grads || diff <= 0 {
		t.Errorf("4× the experts adds %d bytes of activations, want at most the router's %d and the gradients' %d", diff, router, grads)
	}
	if topK.Activations < base.Activations+tokens*4*768*2 {
		t.Errorf("twice the top-k: activations %d, from %d", topK.Activations, base.Activations)
	}
	// Every expert is resident: 48 more, 3 packed 4-bit stacks in each of 2 sparse blocks.
	if packed := int64(48 * 2 * 3 * 2048 * 768 / 2); more.Weights-base.Weights < packed {
		t.Errorf("weights %d with 64 experts, %d with 16: want at least %d more", more.Weights, base.Weights, packed)
	}
	t.Log("\n" + base.Describe(64*gbytes))
}
