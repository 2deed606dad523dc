package ggufimport

import (
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/mlx"
)

// synthetic writes a small random model of arch as GGUF, the way llama.cpp's converter does,
// and returns the GGUF path and the Hugging Face-layout weights it was made from (as the GGUF
// file holds them, when quantized). args are synthetic.py's options.
func synthetic(t *testing.T, arch string, args ...string) (ggufPath, referencePath string) {
	t.Helper()
	dir := t.TempDir()
	args = append([]string{"testdata/synthetic.py", arch, dir}, args...)
	if out, err := exec.Command(testenv.Python(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("synthetic.py %s: %v\n%s", arch, err, out)
	}
	return filepath.Join(dir, "model.gguf"), filepath.Join(dir, "reference.safetensors")
}

func floats(t *testing.T, a *mlx.Array) []float32 {
	t.Helper()
	var out []float32
	if err := mlx.Do(func() error { out = a.Floats(); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// equalWeights checks that the float32 import in dir holds exactly the tensors of the
// safetensors file ref, bit for bit.
func equalWeights(t *testing.T, dir, ref string) {
	t.Helper()
	want, _, err := mlx.LoadSafetensors(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := mlx.LoadSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, a := range want {
			a.Free()
		}
		for _, a := range got {
			a.Free()
		}
	}()
	if len(got) != len(want) {
		t.Fatalf("%d tensors imported, the original has %d", len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Fatalf("tensor %s missing from the import", name)
		}
		if !slices.Equal(g.Shape(), w.Shape()) || g.Dtype() != mlx.Float32 {
			t.Fatalf("%s: %s %v, want float32 %v", name, g.Dtype(), g.Shape(), w.Shape())
		}
		gv, wv := floats(t, g), floats(t, w)
		for i := range wv {
			if math.Float32bits(gv[i]) != math.Float32bits(wv[i]) {
				t.Fatalf("%s[%d] = %g, the original has %g", name, i, gv[i], wv[i])
			}
		}
	}
}

// Imported float32, every weight equals the Hugging Face original bit for bit: names map,
// Llama's (and Mistral's) q/k permutation is undone, Qwen2's biases come along; Mistral's
// SentencePiece vocabulary becomes a byte-fallback BPE; Llama 3.1's stored rotary factors
// become rope_scaling again. The model loads in yai and
// in mlx-lm, which agree on the next token at every position; the tokenizer round-trips.
func TestImportRoundTripsLlamaMistralAndQwen2(t *testing.T) {
	for _, arch := range []string{"llama", "llama3", "mistral", "qwen2"} {
		t.Run(arch, func(t *testing.T) {
			src, ref := synthetic(t, arch)
			out := filepath.Join(t.TempDir(), "model")
			if _, err := Import(src, out, Options{Bits: 0, Dtype: mlx.Float32}); err != nil {
				t.Fatal(err)
			}
			equalWeights(t, out, ref)

			m, err := model.Load(out, model.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			// Llama 3.1's rope_freqs becomes rope_scaling again.
			if rs := m.Config.RopeScaling; (arch == "llama3") != (rs != nil) ||
				(rs != nil && (rs.Kind() != "llama3" || rs.Factor != 8 || rs.OriginalMaxPositionEmbeddings != 8192)) {
				t.Errorf("rope_scaling %+v", rs)
			}
			tok, err := tokenizer.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			const text = "the theater in a gather, é 日本"
			ids := tok.Encode(text, true)
			// add_bos_token is set for the Llama-architecture files only.
			if bos, _ := tok.BOS(); (ids[0] == bos) != (arch != "qwen2") {
				t.Errorf("BOS handling: ids %v, bos %d", ids, bos)
			}
			var hf [][]int32
			python(t, "encode", out, []string{text}, &hf)
			if !slices.Equal(ids, hf[0]) {
				t.Errorf("yai encodes %v, HF tokenizers %v", ids, hf[0])
			}
			if got := tok.Decode(ids, true); got != text {
				t.Errorf("decode(encode(%q)) = %q", text, got)
			}
			var ref2 []int32
			python(t, "argmax", out, ids, &ref2)
			if mine := nextTokens(t, m, ids); !slices.Equal(mine, ref2) {
				t.Errorf("next tokens: yai %v, mlx-lm %v", mine, ref2)
			}

			// The same file, quantized, loads as a 4-bit model.
			q := filepath.Join(t.TempDir(), "q")
			sum, err := Import(src, q, Options{Bits: 4, GroupSize: 32, Dtype: mlx.Float32})
			if err != nil {
				t.Fatal(err)
			}
			if want := 2*7 + 1 + map[string]int{"llama": 1, "llama3": 1, "mistral": 1, "qwen2": 0}[arch]; sum.Quantized != want {
				t.Errorf("%d tensors quantized, want %d", sum.Quantized, want)
			}
			qm, err := model.Load(q, model.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			qm.Free()
		})
	}
}
