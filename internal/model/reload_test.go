package model

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/mlx"
)

func TestSelectiveLoadAndReload(t *testing.T) {
	dir := writeMicro(t, 0)
	full := mustLoad(t, dir)
	defer full.Free()
	rows := randomTokens(5, 1, 12, full.Config.VocabSize)
	want, _, _ := logits(t, full, rows)

	firstLayer := func(name string) bool { return strings.HasPrefix(name, "model.layers.0.") }
	part, err := Load(dir, LoadOptions{Only: firstLayer})
	if err != nil {
		t.Fatal(err)
	}
	defer part.Free()
	if diff := cmp.Diff(full.TensorNames(), part.TensorNames()); diff != "" {
		t.Errorf("a partial load knows other tensor names (-full +partial):\n%s", diff)
	}
	var loaded, wantLoaded []string
	for name := range part.Parameters() {
		loaded = append(loaded, name)
	}
	for _, name := range full.TensorNames() {
		if firstLayer(name) {
			wantLoaded = append(wantLoaded, name)
		}
	}
	slices.Sort(loaded)
	if diff := cmp.Diff(wantLoaded, loaded); diff != "" {
		t.Errorf("Only loaded the wrong tensors (-want +got):\n%s", diff)
	}

	if err := part.Reload(dir, func(name string) bool { return !firstLayer(name) }); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := logits(t, part, rows); !slices.Equal(got, want) {
		t.Fatal("logits after reloading the rest differ from a full load")
	}

	// Drop the embeddings and bring them back, as a memory guard would.
	embed := func(name string) bool { return strings.HasPrefix(name, "model.embed_tokens.") }
	before := part.Nbytes()
	live := mlx.LiveArrays()
	part.FreeTensors(embed)
	if _, ok := part.Parameters()["model.embed_tokens.weight"]; ok || part.Nbytes() >= before || mlx.LiveArrays() != live-3 {
		t.Fatalf("FreeTensors left the embedding: %d → %d bytes", before, part.Nbytes())
	}
	if err := part.Reload(dir, embed); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := logits(t, part, rows); !slices.Equal(got, want) || mlx.LiveArrays() != live {
		t.Fatal("logits after reloading the embeddings differ")
	}

	// A checkpoint of another shape is refused and changes nothing.
	other := t.TempDir()
	if err := WriteTiny(other, TinyPresets["tiny"]); err != nil {
		t.Fatal(err)
	}
	err = part.Reload(other, embed)
	var te *TensorError
	if !errors.As(err, &te) || !strings.HasPrefix(te.Tensor, "model.embed_tokens.") || !strings.Contains(te.Problem, "shape") {
		t.Fatalf("Reload from a different model: %v", err)
	}
	if got, _, _ := logits(t, part, rows); !slices.Equal(got, want) {
		t.Fatal("a failed Reload changed the model")
	}
}
