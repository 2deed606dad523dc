package ggufexport

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/ggufimport"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// variants change a family's preset into a model llama.cpp's architecture holds.
var variants = map[string]struct {
	refusal string
	change  func(*model.TinySpec)
	keys    []string
}{
	// Qwen3-MoE's preset has a dense block; llama.cpp's qwen3moe has experts in every block.
	"qwen3_moe": {refusal: "dense blocks", keys: []string{"self_attn.v_proj", "mlp.gate", "mlp.switch_mlp.up_proj"},
		change: func(s *model.TinySpec) { s.Extra["mlp_only_layers"] = []int{} }},
	// Gemma 3's presets have a global block every third; llama.cpp's gemma3 every sixth.
	"gemma3_text": {refusal: "sliding_window_pattern", change: gemma3Pattern6},
	"gemma3":      {refusal: "sliding_window_pattern", change: gemma3Pattern6},
}

// gemma3Pattern6 gives a Gemma 3 preset six blocks, the last global, as llama.cpp's gemma3
// has them (in text_config too for the multimodal checkpoint).
func gemma3Pattern6(s *model.TinySpec) {
	s.Config.NumHiddenLayers = 6
	s.Extra["sliding_window_pattern"] = 6
	if tc, ok := s.Extra["text_config"].(map[string]any); ok {
		tc = maps.Clone(tc)
		tc["num_hidden_layers"] = 6
		tc["sliding_window_pattern"] = 6
		s.Extra["text_config"] = tc
	}
}

// gemmaPositionTol bounds a position's log-probability difference for Gemma, which
// llama.cpp computes in half precision where it matters more than for the other families
// (2e-4): its CPU GELU reads a float16 table, and Gemma 3's query and key norms give
// attention scores of order one (arch.go says what was measured). Measured with random
// adapters: at most 6e-4 (Gemma 2), 4.2e-3 (Gemma 3) and 6.2e-3 (the multimodal Gemma 3),
// 9.9e-3 on a six-block Gemma 3 whose window covers the whole row; mean losses agree within
// 1e-4 nats and top-1 at ≥ 99% of 300 positions.
const gemmaPositionTol = 1e-2

// Every family yai trains either exports to a format and runs in llama.cpp as yai runs it
// (a tiny model of the family with random adapters: the merged GGUF against yai with the
// adapters, and the base GGUF with the GGUF LoRA against the same), or refuses that format
// with an error that names it. The family table (Support) says which.
func TestEveryFamilyExportsOrRefuses(t *testing.T) {
	support := Support()
	// Llama 3's rotary scaling (rope_freqs) too: the "tiny" preset has it.
	families := append(slices.Clone(testmodel.Families), testmodel.Family{Name: "llama", Preset: "tiny", Keys: testmodel.AdapterKeys})
	// Phi-3 with a context within its original one (written from tiny-phi3 below).
	phi3 := testmodel.Families[slices.IndexFunc(testmodel.Families, func(f testmodel.Family) bool { return f.Name == "phi3" })]
	phi3.Preset = "tiny-phi3-short"
	// Gemma 3 with linear rotary scaling on its global blocks, as Gemma 3 4B and larger.
	gemma3 := testmodel.Families[slices.IndexFunc(testmodel.Families, func(f testmodel.Family) bool { return f.Name == "gemma3_text" })]
	gemma3.Preset = "tiny-gemma3-linear"
	families = append(families, phi3, gemma3)
	// derived are the presets written from another one.
	derived := map[string]func() model.TinySpec{
		// llama.cpp's context (at most 256 here) within the original one: it would take the
		// short factors, which yai never uses.
		"tiny-phi3-short": func() model.TinySpec {
			spec := model.TinyPresets["tiny-phi3"]
			spec.Extra = maps.Clone(spec.Extra)
			spec.Extra["original_max_position_embeddings"] = 512
			return spec
		},
		"tiny-gemma3-linear": func() model.TinySpec {
			spec := model.TinyPresets["tiny-gemma3"]
			spec.Extra = maps.Clone(spec.Extra)
			spec.Extra["rope_scaling"] = map[string]any{"rope_type": "linear", "factor": json.Number("8.0")}
			return spec
		},
	}
	specOf := func(preset string) model.TinySpec {
		if d, ok := derived[preset]; ok {
			return d()
		}
		spec := model.TinyPresets[preset]
		spec.Extra = maps.Clone(spec.Extra)
		return spec
	}
	for _, f := range families {
		t.Run(f.Name+"/"+f.Preset, func(t *testing.T) {
			formats, ok := support[f.Name]
			if !ok {
				t.Fatalf("family %s has no row in the export table", f.Name)
			}
			dir := filepath.Join(t.TempDir(), f.Preset)
			if err := model.WriteTiny(dir, specOf(f.Preset)); err != nil {
				t.Fatal(err)
			}
			if v, ok := variants[f.Name]; ok {
				// The preset has what llama.cpp's architecture cannot hold: refused. The same
				// model without it exports.
				_, err := Merged(dir, "", filepath.Join(t.TempDir(), "refused"), MergedOptions{Type: gguf.F32})
				if err == nil || !strings.Contains(err.Error(), v.refusal) {
					t.Fatalf("%s: %v, want a refusal naming %q", f.Preset, err, v.refusal)
				}
				spec := specOf(f.Preset)
				v.change(&spec)
				dir = filepath.Join(t.TempDir(), "variant")
				if err := model.WriteTiny(dir, spec); err != nil {
					t.Fatal(err)
				}
				if v.keys != nil {
					f.Keys = v.keys
				}
			}
			adapters := f.Adapter(t, dir, 5, 0.05)
			out := t.TempDir()
			merged, mergedErr := Merged(dir, adapters, filepath.Join(out, "merged"), MergedOptions{Type: gguf.F32, Name: "tiny"})
			base, baseErr := Merged(dir, "", filepath.Join(out, "base"), MergedOptions{Type: gguf.F32, Name: "tiny"})
			lora, loraErr := Adapter(dir, adapters, filepath.Join(out, "lora"), AdapterOptions{})
			for _, c := range []struct {
				format string
				err    error
			}{{FormatMerged, mergedErr}, {FormatMerged, baseErr}, {FormatAdapter, loraErr}} {
				switch {
				case slices.Contains(formats, c.format) && c.err != nil:
					t.Fatalf("%s is listed as exportable to %s: %v", f.Name, c.format, c.err)
				case !slices.Contains(formats, c.format) && c.err == nil:
					t.Fatalf("%s is not listed as exportable to %s, but the export succeeded", f.Name, c.format)
				case c.err != nil && !strings.Contains(c.err.Error(), "cannot be exported as "+c.format):
					t.Errorf("%s to %s: the refusal does not name the format: %v", f.Name, c.format, c.err)
				case c.err != nil:
					t.Logf("%s to %s refused: %v", f.Name, c.format, c.err)
				}
			}
			if mergedErr != nil && loraErr != nil {
				return
			}
			tok, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			n, minAgree, tol := 97, 0.98, 2e-4
			if archs[f.Name].normPlusOne {
				// Gemma: the criterion (≥ 99% top-1 over a few hundred positions, mean
				// loss within 0.002 nats) and a wider bound per position.
				n, minAgree, tol = positions+1, 0.99, gemmaPositionTol
			}
			ids := tok.Encode(text, false)[:n]
			live := yaiTeacher(t, dir, adapters, ids)
			if mergedErr == nil {
				got := llamaCpp(t, filepath.Join(merged.Dir, merged.Files[0]), "", 0, ids)
				agree(t, f.Name+": merged F32 GGUF in llama.cpp vs yai with its adapters", got, live, minAgree, 0.002)
				samePositions(t, f.Name+": merged", got, live, tol)
			}
			if loraErr == nil && baseErr == nil {
				got := llamaCpp(t, filepath.Join(base.Dir, base.Files[0]), filepath.Join(lora.Dir, AdapterFile), 1, ids)
				agree(t, f.Name+": base F32 GGUF + GGUF LoRA in llama.cpp vs yai with its adapters", got, live, minAgree, 0.002)
				samePositions(t, f.Name+": base + LoRA", got, live, tol)
			}
		})
	}
}

// Every family the table does not export to a format is refused with the format named.
func TestUnsupportedPairsAreRefused(t *testing.T) {
	for _, typ := range modeldir.SupportedTypes() {
		f, _ := modeldir.FamilyOf(typ)
		for _, format := range []string{FormatMerged, FormatAdapter} {
			_, err := archFor(&modeldir.Config{ModelType: typ, Family: f}, format)
			want := slices.Contains(Support()[f.Name], format)
			switch {
			case want && err != nil:
				t.Errorf("%s to %s: %v", typ, format, err)
			case !want && (err == nil || !strings.Contains(err.Error(), "cannot be exported as "+format)):
				t.Errorf("%s to %s: %v, want a refusal naming the format", typ, format, err)
			}
		}
	}
}

// A merged export in every tensor type the gguf package can also quantize is, tensor by
// tensor, byte for byte that package's quantization of the F32 export of the same merged
// weights; every file (the adapter too) reads back with the gguf package's GGUFReader and
// with yai's reader, and the F32 file imports back into yai with the adapters' logits.
func TestExportsMatchTheGGUFPackageAndReadBack(t *testing.T) {
	for _, name := range []string{"llama", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			i := slices.IndexFunc(testmodel.Families, func(f testmodel.Family) bool { return f.Name == name })
			f := testmodel.Families[i]
			dir := testmodel.Tiny(t, f.Preset)
			adapters := f.Adapter(t, dir, 7, 0.05)
			out := t.TempDir()
			files := map[gguf.TensorType]string{}
			for _, typ := range Types() {
				res, err := Merged(dir, adapters, filepath.Join(out, typ.String()), MergedOptions{Type: typ, Name: "tiny"})
				if err != nil {
					t.Fatal(err)
				}
				files[typ] = filepath.Join(res.Dir, res.Files[0])
			}
			lora, err := Adapter(dir, adapters, filepath.Join(out, "lora"), AdapterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			loraFile := filepath.Join(lora.Dir, AdapterFile)
			args := []string{"testdata/check_files.py", files[gguf.F32]}
			for _, typ := range Types() {
				if typ != gguf.F32 {
					args = append(args, files[typ])
				}
			}
			args = append(args, "--", loraFile)
			cmd := exec.Command(testenv.Python(t), args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			if err != nil {
				t.Fatalf("check_files.py: %v\n%s", err, stderr.String())
			}
			var checked struct {
				Checked map[string]int                        `json:"checked"`
				Tensors map[string]map[string]json.RawMessage `json:"tensors"`
			}
			if err := json.Unmarshal(stdout, &checked); err != nil {
				t.Fatal(err)
			}
			for _, typ := range Types() {
				if typ == gguf.F32 {
					continue
				}
				if n := checked.Checked[files[typ]]; n == 0 {
					t.Errorf("%s: no tensors checked", typ)
				} else {
					t.Logf("%s: %d tensors identical to the gguf package's quantization", typ, n)
				}
			}
			if n := len(checked.Tensors[loraFile]); n != 2*len(lora.Fused) {
				t.Errorf("the gguf package reads %d adapter tensors, want %d", n, 2*len(lora.Fused))
			}
			// yai's own reader.
			for _, p := range append(slices.Collect(maps.Values(files)), loraFile) {
				g, err := gguf.Open(p)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				g.Close()
			}
			// The F32 merged file imported back as a float model computes what the adapters do.
			back := filepath.Join(out, "imported")
			if _, err := ggufimport.Import(files[gguf.F32], back, ggufimport.Options{Dtype: mlx.Float32}); err != nil {
				t.Fatal(err)
			}
			tok, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			ids := tok.Encode(text, false)[:65]
			agree(t, name+": merged F32 GGUF imported back into yai vs yai with its adapters",
				yaiTeacher(t, back, "", ids), yaiTeacher(t, dir, adapters, ids), 1, 1e-5)
		})
	}
}

// samePositions checks that the log-probability of the next token differs by at most tol at
// every position: the tiny random models are nearly uniform, so a wrong rotary or norm moves
// the mean loss little but single positions more.
func samePositions(t *testing.T, what string, got, want teacher, tol float64) {
	t.Helper()
	worst := 0.0
	for i := range got.Logprob {
		worst = max(worst, math.Abs(got.Logprob[i]-want.Logprob[i]))
	}
	t.Logf("%s: largest difference of a position's log-probability %.2g", what, worst)
	if worst > tol {
		t.Errorf("%s: a position's log-probability differs by %.3g, want ≤ %g", what, worst, tol)
	}
}

// The GGUF LoRA's Modelfile names the base GGUF and the adapter, and stops at the base's
// end-of-turn tokens, read from the base file (whatever its tokenizer); a base of another
// shape is refused.
func TestAdapterModelfileFromTheBaseGGUF(t *testing.T) {
	dir := testmodel.Tiny(t, "micro")
	adapters := testmodel.RandomAdapter(t, dir, 3, 0.05)
	out := t.TempDir()
	base, err := Merged(dir, "", filepath.Join(out, "base"), MergedOptions{Type: gguf.F16})
	if err != nil {
		t.Fatal(err)
	}
	basePath := filepath.Join(base.Dir, base.Files[0])
	res, err := Adapter(dir, adapters, filepath.Join(out, "lora"), AdapterOptions{BaseGGUF: basePath})
	if err != nil {
		t.Fatal(err)
	}
	mf, err := os.ReadFile(filepath.Join(res.Dir, "Modelfile"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Modelfile:\n%s", mf)
	for _, want := range []string{"FROM " + basePath + "\n", "ADAPTER ./adapter.gguf\n", `PARAMETER stop "<|eot_id|>"`} {
		if !strings.Contains(string(mf), want) {
			t.Errorf("the Modelfile lacks %q", want)
		}
	}
	other := testmodel.Tiny(t, "tiny-qwen3")
	wrong, err := Merged(other, "", filepath.Join(out, "qwen3"), MergedOptions{Type: gguf.F16})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Adapter(dir, adapters, filepath.Join(out, "lora2"), AdapterOptions{BaseGGUF: filepath.Join(wrong.Dir, wrong.Files[0])})
	if err == nil || !strings.Contains(err.Error(), "architecture qwen3") {
		t.Errorf("an adapter for llama beside a qwen3 base: %v", err)
	}
}
