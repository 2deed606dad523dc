package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
)

// writeGemma3Headers writes a header-only 4-bit Gemma 3 multimodal checkpoint as mlx-lm's
// gemma3.py names it: the text model under language_model.*, a vision tower beside it,
// the head tied (no lm_head). skip names a tensor to leave out.
func writeGemma3Headers(t *testing.T, dir, skip string) {
	cfg := map[string]any{"model_type": "gemma3", "vocab_size": 1024, "text_config": map[string]any{
		"model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 4, "intermediate_size": 128,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "sliding_window": 4, "sliding_window_pattern": 2}}
	testenv.WriteHeaderFiles(t, dir, cfg, func(quant func(string, int, int), norm func(string, int)) {
		n := func(name string, size int) {
			if name != skip {
				norm(name, size)
			}
		}
		quant("language_model.model.embed_tokens", 1024, 64)
		n("language_model.model.norm.weight", 64)
		n("vision_tower.vision_model.post_layernorm.weight", 16)
		for i := range 4 {
			p := fmt.Sprintf("language_model.model.layers.%d.", i)
			for _, m := range []struct {
				name    string
				out, in int
			}{{"self_attn.q_proj", 64, 64}, {"self_attn.k_proj", 32, 64}, {"self_attn.v_proj", 32, 64}, {"self_attn.o_proj", 64, 64},
				{"mlp.gate_proj", 128, 64}, {"mlp.up_proj", 128, 64}, {"mlp.down_proj", 64, 128}} {
				quant(p+m.name, m.out, m.in)
			}
			for _, name := range []string{"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"} {
				n(p+name+".weight", 64)
			}
			n(p+"self_attn.q_norm.weight", 16)
			n(p+"self_attn.k_norm.weight", 16)
		}
	})
}

// validate checks a Gemma 3 model through its family's layout: the multimodal checkpoint's
// tensor names pass (the vision tower is dropped, as mlx-lm drops it), LoRA keys are checked
// against its blocks, and a missing norm is reported by name.
func TestValidateGemma3Model(t *testing.T) {
	dir := t.TempDir()
	writeGemma3Headers(t, filepath.Join(dir, "model"), "")
	recipe := filepath.Join(dir, "r.yaml")
	src := strings.Replace(base, "rank: 16", "rank: 16\n      layers: 2\n      keys: [q_proj, o_proj, down_proj]", 1)
	os.WriteFile(recipe, []byte(src), 0o644)
	p, ds := Validate(recipe, nil, ValidateOptions{})
	if p == nil || ds.HasErrors() {
		t.Fatalf("a well-formed gemma3 model fails the dry run:\n%s", ds.Format())
	}
	if c := p.Model.Config; c.ModelType != "gemma3" || !c.TieWordEmbeddings || c.Window(0) != 4 || c.Window(1) != 0 {
		t.Errorf("config %+v", c)
	}

	_, ds = Validate(recipe, []string{"stages.lora.with.keys=[q_norm_proj]"}, ValidateOptions{})
	if msg := ds.Format(); !strings.Contains(msg, `"q_norm_proj" matches no module of block 3`) {
		t.Errorf("a LoRA key the model lacks is not reported:\n%s", msg)
	}

	broken := filepath.Join(dir, "model")
	os.RemoveAll(broken)
	writeGemma3Headers(t, broken, "language_model.model.layers.1.post_feedforward_layernorm.weight")
	_, ds = Validate(recipe, nil, ValidateOptions{})
	if msg := ds.Format(); !strings.Contains(msg, "tensor language_model.model.layers.1.post_feedforward_layernorm.weight: missing") {
		t.Errorf("a missing Gemma norm is not reported by name:\n%s", msg)
	}
}
