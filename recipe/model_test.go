package recipe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/modeldir"
)

// llama8B is the published shape of Llama-3.1-8B-Instruct.
var llama8B = modeldir.Config{ModelType: "llama", NumHiddenLayers: 32, HiddenSize: 4096, IntermediateSize: 14336,
	NumAttentionHeads: 32, NumKeyValueHeads: 8, VocabSize: 128256}

// validate checks LoRA keys and layer counts against config.json and the headers.
func TestValidateAgainstModel(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteHeaderModel(t, filepath.Join(dir, "model"), modeldir.Config{ModelType: "llama", NumHiddenLayers: 4, HiddenSize: 64, IntermediateSize: 128, NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 1024})
	recipe := filepath.Join(dir, "r.yaml")
	src := strings.Replace(base, "rank: 16", "rank: 16\n      layers: 6\n      keys: [q_proj, self_attn.qproj]", 1) +
		"  - id: reload\n    kind: reload-selective\n    with: {tensors: [targets, lm_head, nosuch]}\n"
	os.WriteFile(recipe, []byte(src), 0o644)
	_, ds := Validate(recipe, nil, ValidateOptions{})
	var got []string
	for _, d := range ds {
		got = append(got, strings.TrimPrefix(d.String(), recipe+":"))
	}
	want := []string{
		`15:15: error: layers: 6 is more than the model's 4 layers`,
		`16:22: error: keys: "self_attn.qproj" matches no module of block 3 (did you mean "self_attn.q_proj"?)`,
		`24:40: error: tensors: "nosuch" names no tensor of the model (use targets, head, or a name suffix)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}

	p, ds := Validate(recipe, []string{"stages.lora.with.layers=4", "stages.lora.with.keys=[q_proj]", "stages.reload.with.tensors=[targets]"}, ValidateOptions{})
	if p == nil || p.Model == nil || p.Model.Config.NumHiddenLayers != 4 {
		t.Fatalf("fixed by overrides, still invalid:\n%s", ds.Format())
	}
}

// A model the loader cannot run fails the dry run already, at the recipe's model line, with
// the loader's own message.
func TestValidateRejectsUnsupportedModel(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteHeaderModel(t, filepath.Join(dir, "model"), modeldir.Config{ModelType: "gpt2", NumHiddenLayers: 4, HiddenSize: 64, IntermediateSize: 128, NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 1024})
	recipe := filepath.Join(dir, "r.yaml")
	os.WriteFile(recipe, []byte(base), 0o644)
	p, ds := Validate(recipe, nil, ValidateOptions{})
	if p != nil || !ds.HasErrors() {
		t.Fatalf("validate accepted a gpt2 model:\n%s", ds.Format())
	}
	if msg := ds.Format(); !strings.Contains(msg, `unsupported model_type "gpt2"`) || !strings.Contains(msg, "config.json") {
		t.Errorf("diagnostic does not name the file and the model type:\n%s", msg)
	}
}

// The seed recipe validates against a headers-only copy of the real model's shapes.
func TestSeedRecipeAgainstLlama8BHeaders(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteHeaderModel(t, dir, llama8B)
	checked := 0
	for _, f := range shippedRecipes(t) {
		if !for8B(t, f) {
			continue
		}
		checked++
		p, ds := Validate(f, []string{"model=" + dir, "data=data/quickstart"}, ValidateOptions{})
		if p == nil || ds.HasErrors() {
			t.Errorf("%s:\n%s", f, ds.Format())
		}
	}
	if checked < 2 {
		t.Errorf("%d shipped recipes train the 8B model; want the 7 GB and auto ones at least", checked)
	}
}

// for8B reports whether a shipped recipe trains the 8B model (the headers these tests write);
// the budget of a recipe for a smaller model does not hold on the 8B shapes.
func for8B(t testing.TB, f string) bool {
	r, ds := LoadFile(f, nil)
	if r == nil {
		t.Fatalf("%s:\n%s", f, ds.Format())
	}
	return modeldir.Aliases[r.Model] == modeldir.Aliases["llama-8b"]
}

func BenchmarkValidate(b *testing.B) {
	dir := b.TempDir()
	testenv.WriteHeaderModel(b, dir, llama8B)
	for _, f := range shippedRecipes(b) {
		if !for8B(b, f) {
			continue
		}
		b.Run(filepath.Base(f), func(b *testing.B) {
			for b.Loop() {
				if p, ds := Validate(f, []string{"model=" + dir, "data=data/quickstart"}, ValidateOptions{}); p == nil {
					b.Fatal(ds)
				}
			}
		})
	}
}
