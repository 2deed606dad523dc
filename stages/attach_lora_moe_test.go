package stages

import (
	"testing"

	"github.com/yai-dev/yai/modeldir"
)

// A key may name a module the last block lacks when another block has it: a Qwen3-MoE whose
// last block is dense still has experts in others, and adapters go where the module is.
func TestLoRAKeysOfMixedBlocks(t *testing.T) {
	info := &modeldir.Info{Dir: "m", Config: &modeldir.Config{NumHiddenLayers: 2}, Tensors: map[string]modeldir.TensorInfo{
		"model.layers.0.mlp.switch_mlp.up_proj.weight": {}, "model.layers.1.mlp.up_proj.weight": {}}}
	lora := AttachLoRA.Defaults()
	lora.Layers, lora.Keys = 2, []string{"switch_mlp.up_proj", "mlp.up_proj"}
	if got := AttachLoRA.CheckModel(lora, info); len(got) != 0 {
		t.Errorf("problems %+v", got)
	}
	lora.Keys = []string{"switch_mlp.down_proj"}
	if got := AttachLoRA.CheckModel(lora, info); len(got) != 1 || got[0].At != "with.keys.0" {
		t.Errorf("a key no block has: %+v", got)
	}
}
