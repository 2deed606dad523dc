package modeldir_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/yai-dev/yai/modeldir"
)

func parse(t *testing.T, cfg map[string]any) (*modeldir.Config, error) {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return modeldir.ParseConfig(js)
}

func moeBase(extra map[string]any) map[string]any {
	c := map[string]any{"hidden_size": 64, "num_hidden_layers": 4, "intermediate_size": 96, "num_attention_heads": 4,
		"vocab_size": 100, "rms_norm_eps": 1e-5}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// Mixtral's defaults are mixtral.py's: 8 experts, 2 per token, 8 key/value heads, rope_theta
// 1e6, untied; every block a mixture, its experts stacked under switch_mlp.
func TestMixtralLayout(t *testing.T) {
	c, err := parse(t, moeBase(map[string]any{"model_type": "mixtral", "num_attention_heads": 8, "head_dim": 4}))
	if err != nil {
		t.Fatal(err)
	}
	if c.NumExperts != 8 || c.ExpertsPerToken != 2 || c.NumKeyValueHeads != 8 || c.RopeTheta != 1e6 || c.TieWordEmbeddings || c.HeadDim != 8 || c.SoftmaxFirst {
		t.Errorf("defaults: %+v", c)
	}
	l := c.Layout().Layers[3]
	if l.Gate.Path != "" || l.Router.Path != "model.layers.3.block_sparse_moe.gate" || l.Router.Out != 8 ||
		l.ExpertDown.Path != "model.layers.3.block_sparse_moe.switch_mlp.down_proj" || l.ExpertDown.Experts != 8 || l.ExpertDown.In != 96 {
		t.Errorf("layer: %+v", l)
	}
	if _, err := parse(t, moeBase(map[string]any{"model_type": "mixtral", "num_local_experts": 2, "num_experts_per_tok": 3})); err == nil {
		t.Error("more experts per token than experts: no error")
	}
}

// Qwen3-MoE mixes dense and sparse blocks as decoder_sparse_step and mlp_only_layers say, and
// requires every field of its ModelArgs.
func TestQwen3MoELayout(t *testing.T) {
	cfg := moeBase(map[string]any{"model_type": "qwen3_moe", "num_experts": 4, "num_experts_per_tok": 2, "decoder_sparse_step": 2,
		"mlp_only_layers": []int{3}, "moe_intermediate_size": 32, "num_key_value_heads": 2, "head_dim": 16, "rope_theta": 1e6,
		"tie_word_embeddings": true, "max_position_embeddings": 512, "norm_topk_prob": true})
	c, err := parse(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sparse []bool
	for _, l := range c.Layout().Layers {
		sparse = append(sparse, l.Router.Path != "")
		if (l.Router.Path != "") == (l.Gate.Path != "") || l.QNorm.Path == "" {
			t.Errorf("layer %+v: a block is dense or sparse, with q/k norms", l)
		}
	}
	if want := []bool{false, true, false, false}; !slicesEqual(sparse, want) {
		t.Errorf("sparse blocks %v, want %v", sparse, want)
	}
	if l := c.Layout().Layers[1]; l.ExpertUp.Path != "model.layers.1.mlp.switch_mlp.up_proj" || l.ExpertUp.Out != 32 || l.Router.Path != "model.layers.1.mlp.gate" {
		t.Errorf("sparse layer: %+v", l)
	}
	delete(cfg, "norm_topk_prob")
	if _, err := parse(t, cfg); err == nil || !strings.Contains(err.Error(), "norm_topk_prob") {
		t.Errorf("missing norm_topk_prob: %v", err)
	}
}

func slicesEqual(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Stacked experts bind (experts, out, in) tensors; a packed stack's quantization is read from
// its last axes.
func TestBindExperts(t *testing.T) {
	m := modeldir.Module{Kind: modeldir.LinearModule, Path: "e", In: 64, Out: 32, Experts: 4, Why: "w"}
	f := &fakeTensors{stored: map[string]modeldir.Stored{"e.weight": {Shape: []int{4, 32, 8}, Uint32: true}, "e.scales": {Shape: []int{4, 32, 1}}}}
	c := &modeldir.Config{}
	q, ok := c.ModuleQuant(f, m)
	if !ok || q != (modeldir.Quant{GroupSize: 64, Bits: 4, Mode: "affine"}) {
		t.Fatalf("quant %v %v", q, ok)
	}
	modeldir.BindModule(f, m, q, true)
	want := []string{"bind e.weight [4 32 8] U32 (experts by w, packed 4-bit)", "bind e.scales [4 32 1] F16, BF16, F32 or U8 (experts by w, groups of 64)",
		"bind e.biases [4 32 1] F16, BF16, F32 or U8 (experts by w, groups of 64)"}
	if strings.Join(f.log, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(f.log, "\n"), strings.Join(want, "\n"))
	}
	if !modeldir.PerExpert("model.layers.0.block_sparse_moe.experts.3.w1.weight") || modeldir.PerExpert("model.layers.0.mlp.switch_mlp.up_proj.weight") {
		t.Error("PerExpert")
	}
}

// A checkpoint in the Hugging Face per-expert layout is refused with the way out: mlx-lm's
// sanitize stacks it at load, yai reads the stacked layout mlx_lm.convert writes.
func TestPerExpertCheckpointIsExplained(t *testing.T) {
	c, err := parse(t, moeBase(map[string]any{"model_type": "mixtral", "num_hidden_layers": 1, "num_local_experts": 2, "num_key_value_heads": 4}))
	if err != nil {
		t.Fatal(err)
	}
	info := &modeldir.Info{Dir: "m", Config: c, Tensors: map[string]modeldir.TensorInfo{}}
	for _, m := range c.Layout().Modules() {
		if m.Experts > 0 {
			continue
		}
		shape := []int64{int64(m.Out), int64(m.In)}
		if m.Kind == modeldir.NormModule {
			shape = shape[:1]
		}
		info.Tensors[m.Path+".weight"] = modeldir.TensorInfo{Dtype: "F32", Shape: shape}
	}
	for e := range 2 {
		for _, w := range []string{"w1", "w2", "w3"} {
			info.Tensors[fmt.Sprintf("model.layers.0.block_sparse_moe.experts.%d.%s.weight", e, w)] = modeldir.TensorInfo{Dtype: "F32", Shape: []int64{96, 64}}
		}
	}
	var perExpert, missing int
	for _, p := range info.Check() {
		switch {
		case strings.Contains(p.Message, "mlx_lm.convert"):
			perExpert++
		case strings.HasPrefix(p.Message, "missing") && strings.Contains(p.Tensor, "switch_mlp"):
			missing++
		default:
			t.Errorf("unexpected problem: %v", p)
		}
	}
	if perExpert != 6 || missing != 3 {
		t.Errorf("%d per-expert tensors explained, %d stacks missing; want 6 and 3", perExpert, missing)
	}
}
