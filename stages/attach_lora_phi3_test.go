package stages

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/modeldir"
)

// Unset keys are the family's default (Phi-3's fused qkv_proj, Llama's q_proj and v_proj);
// a key Phi-3 fuses away points to the module that holds it.
func TestAttachLoRAKeysPerFamily(t *testing.T) {
	parse := func(modelType string) *modeldir.Config {
		c, err := modeldir.ParseConfig([]byte(`{"model_type": "` + modelType + `", "hidden_size": 64, "num_hidden_layers": 2,
			"intermediate_size": 128, "num_attention_heads": 4, "vocab_size": 100, "rms_norm_eps": 1e-6}`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	phi3 := &modeldir.Info{Dir: "m", Config: parse("phi3"), Tensors: map[string]modeldir.TensorInfo{
		"model.layers.1.self_attn.qkv_proj.weight": {}, "model.layers.1.mlp.gate_up_proj.weight": {}}}
	lora := AttachLoRA.Defaults()
	lora.Layers = 2
	if got := AttachLoRA.CheckModel(lora, phi3); len(got) != 0 {
		t.Errorf("default keys on phi3: %+v", got)
	}
	if got := lora.KeysFor(phi3.Config); !cmp.Equal(got, []string{"self_attn.qkv_proj"}) {
		t.Errorf("phi3 default keys %v", got)
	}
	if got := lora.KeysFor(parse("llama")); !cmp.Equal(got, []string{"self_attn.q_proj", "self_attn.v_proj"}) {
		t.Errorf("llama default keys %v", got)
	}
	lora.Keys = []string{"up_proj"}
	want := []Problem{{At: "with.keys.0", Summary: `keys: "up_proj" matches no module of block 1 (the model fuses it into "mlp.gate_up_proj": adapt that)`,
		Detail: "modules: mlp.gate_up_proj, self_attn.qkv_proj"}}
	if diff := cmp.Diff(want, AttachLoRA.CheckModel(lora, phi3)); diff != "" {
		t.Errorf("fused key (-want +got):\n%s", diff)
	}
	// Unset keys that the model lacks are reported as the default they stand for.
	llama := &modeldir.Info{Dir: "m", Config: parse("llama"), Tensors: phi3.Tensors}
	lora.Keys = nil
	if got := AttachLoRA.CheckModel(lora, llama); len(got) != 2 || got[0].At != "with" ||
		got[0].Summary != `keys (unset, model_type llama's default): "self_attn.q_proj" matches no module of block 1 (the model fuses it into "self_attn.qkv_proj": adapt that)` {
		t.Errorf("llama default keys on a fused block: %+v", got)
	}
}
