package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/modeldir"
)

// llama1B is the published shape of Llama-3.2-1B-Instruct (tied embeddings).
var llama1B = modeldir.Config{ModelType: "llama", NumHiddenLayers: 16, HiddenSize: 2048, IntermediateSize: 8192,
	NumAttentionHeads: 32, NumKeyValueHeads: 8, VocabSize: 128256, TieWordEmbeddings: true}

// smolLM2 is the published shape of SmolLM2-135M-Instruct, the quickstart's imported model.
var smolLM2 = modeldir.Config{ModelType: "llama", NumHiddenLayers: 30, HiddenSize: 576, IntermediateSize: 1536,
	NumAttentionHeads: 9, NumKeyValueHeads: 3, VocabSize: 49152, TieWordEmbeddings: true}

// shippedFixtures gives each shipped recipe a model of its shape (headers-only for the
// published models, the real tiny one for the quickstart) and data of its format.
func shippedFixtures(tb testing.TB) map[string][]string {
	dir := tb.TempDir()
	testenv.WriteHeaderModel(tb, filepath.Join(dir, "8b"), llama8B)
	testenv.WriteHeaderModel(tb, filepath.Join(dir, "1b"), llama1B)
	testenv.WriteHeaderModel(tb, filepath.Join(dir, "smol"), smolLM2)
	if err := model.WriteTiny(filepath.Join(dir, "tiny"), model.TinyPresets["tiny"]); err != nil {
		tb.Fatal(err)
	}
	chat := filepath.Join(dir, "chat")
	os.MkdirAll(chat, 0o755)
	rows := ""
	for i := range 64 {
		rows += fmt.Sprintf(`{"messages": [{"role": "user", "content": "What is %d plus %d?"}, {"role": "assistant", "content": "%d."}]}`+"\n", i, i, 2*i)
	}
	for _, f := range []string{"train.jsonl", "valid.jsonl"} {
		os.WriteFile(filepath.Join(chat, f), []byte(rows), 0o644)
	}
	text, _ := filepath.Abs("../recipes/data/quickstart")
	out := map[string][]string{}
	for _, f := range shippedRecipes(tb) {
		r, ds := LoadFile(f, nil)
		if r == nil {
			tb.Fatalf("%s:\n%s", f, ds.Format())
		}
		switch {
		case r.Model == "llama-3.2-1b":
			out[f] = []string{"model=" + filepath.Join(dir, "1b"), "data=" + chat}
		case strings.Contains(r.Model, "smollm2"):
			out[f] = []string{"model=" + filepath.Join(dir, "smol")}
		case for8B(tb, f):
			out[f] = []string{"model=" + filepath.Join(dir, "8b"), "data=" + text}
		default:
			out[f] = []string{"model=" + filepath.Join(dir, "tiny")}
		}
	}
	return out
}

// Every shipped recipe validates against a model of its shape and data of its format.
func TestShippedRecipesValidate(t *testing.T) {
	for f, sets := range shippedFixtures(t) {
		if p, ds := Validate(f, sets, ValidateOptions{}); p == nil {
			t.Errorf("%s:\n%s", f, ds.Format())
		}
	}
}

// BenchmarkValidateShipped times the whole dry run of each shipped recipe, model files and
// data included, with the data check cached (the first validate fills the cache).
func BenchmarkValidateShipped(b *testing.B) {
	for f, sets := range shippedFixtures(b) {
		if p, ds := Validate(f, sets, ValidateOptions{}); p == nil {
			b.Fatalf("%s:\n%s", f, ds.Format())
		}
		b.Run(filepath.Base(f), func(b *testing.B) {
			for b.Loop() {
				if p, ds := Validate(f, sets, ValidateOptions{}); p == nil {
					b.Fatal(ds)
				}
			}
		})
	}
}
