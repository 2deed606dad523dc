package ggufimport

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// convertedFamilies are the Hugging Face model types testdata/converted.py builds, with the
// GGUF architecture llama.cpp's converter writes for each.
var convertedFamilies = []struct{ family, arch, modelType string }{
	{"qwen3", "qwen3", "qwen3"},
	{"qwen3_moe", "qwen3moe", "qwen3_moe"},
	{"gemma2", "gemma2", "gemma2"},
	{"gemma3", "gemma3", "gemma3_text"},
	{"phi3", "phi3", "phi3"},
	{"mixtral", "llama", "mixtral"},
}

type comparison struct {
	TokenizerMismatches []any   `json:"tokenizer_mismatches"`
	MismatchCount       int     `json:"mismatch_count"`
	MaxLogitDiff        float64 `json:"max_logit_diff"`
	LogitScale          float64 `json:"logit_scale"`
	ArgmaxReference     []int32 `json:"argmax_reference"`
	ArgmaxImport        []int32 `json:"argmax_import"`
	GreedyReference     []int32 `json:"greedy_reference"`
	GreedyImport        []int32 `json:"greedy_import"`
}

// runPy runs the reference Python with the converter's packages (torch) on its path.
func runPy(t *testing.T, pythonPath string, stdin []byte, args ...string) []byte {
	t.Helper()
	c := exec.Command(testenv.Python(t), args...)
	c.Env = append(os.Environ(), "PYTHONPATH="+pythonPath)
	c.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// A tiny random model of each family, saved by transformers and converted by llama.cpp's own
// convert_hf_to_gguf.py (f32 and q8_0), imports into a directory that mlx-lm runs as it runs
// the Hugging Face original: the same logits (f32) or close ones (q8_0), the same greedy
// tokens, and a tokenizer.json that tokenizes the corpus as the original tokenizer does.
// Where yai has the family, yai's forward pass picks the same next tokens as mlx-lm.
func TestImportConverterFiles(t *testing.T) {
	script, pythonPath := testenv.Converter(t)
	vocabs := filepath.Join(filepath.Dir(script), "models")
	texts, err := json.Marshal(corpus(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range convertedFamilies {
		t.Run(f.family, func(t *testing.T) {
			hf := filepath.Join(t.TempDir(), "hf")
			runPy(t, pythonPath, nil, "testdata/converted.py", "make", f.family, hf, vocabs)
			// Each conversion starts torch: q8_0 files of one family in the default tier.
			outtypes := []string{"f32"}
			if i == 0 || testenv.Long() {
				outtypes = append(outtypes, "q8_0")
			}
			var outs []string
			for _, outtype := range outtypes {
				src := filepath.Join(t.TempDir(), outtype+".gguf")
				runPy(t, pythonPath, nil, script, hf, "--outtype", outtype, "--outfile", src)
				out := filepath.Join(t.TempDir(), outtype)
				sum, err := Import(src, out, Options{Bits: 0, Dtype: mlx.Float32})
				if err != nil {
					t.Fatalf("%s: %v", outtype, err)
				}
				if sum.Architecture != f.arch {
					t.Errorf("%s: architecture %q, want %q", outtype, sum.Architecture, f.arch)
				}
				outs = append(outs, out)
			}
			var cs []comparison
			if err := json.Unmarshal(runPy(t, pythonPath, texts, append([]string{"testdata/converted.py", "compare", hf}, outs...)...), &cs); err != nil {
				t.Fatal(err)
			}
			for i, c := range cs {
				outtype := outtypes[i]
				if c.MismatchCount > 0 {
					t.Errorf("%s: %d texts tokenize differently from the original tokenizer, e.g. %v", outtype, c.MismatchCount, c.TokenizerMismatches)
				}
				// q8_0 rounds each weight to 1/127 of its block's largest.
				tol := 1e-4 * c.LogitScale
				if outtype == "q8_0" {
					tol = 0.1 * c.LogitScale
				}
				t.Logf("%s: largest logit difference %.3g (logits up to %.3g)", outtype, c.MaxLogitDiff, c.LogitScale)
				if c.MaxLogitDiff > tol {
					t.Errorf("%s: logits differ from mlx-lm's on the original by %g (tolerance %g)", outtype, c.MaxLogitDiff, tol)
				}
				if outtype == "f32" && (!slices.Equal(c.ArgmaxImport, c.ArgmaxReference) || !slices.Equal(c.GreedyImport, c.GreedyReference)) {
					t.Errorf("%s: next tokens %v, greedy %v; the original gives %v, %v", outtype, c.ArgmaxImport, c.GreedyImport, c.ArgmaxReference, c.GreedyReference)
				}
			}
			cfg, err := modeldir.ReadConfig(outs[0])
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ModelType != f.modelType {
				t.Errorf("model_type %q, want %q", cfg.ModelType, f.modelType)
			}
			yaiAgrees(t, outs[0])
		})
	}
}

// yaiAgrees checks yai's next tokens against mlx-lm's on the imported directory.
func yaiAgrees(t *testing.T, dir string) {
	t.Helper()
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	ids := []int32{5, 17, 42, 99, 7, 3, 250, 11}
	var want []int32
	python(t, "argmax", dir, ids, &want)
	if got := nextTokens(t, m, ids); !slices.Equal(got, want) {
		t.Errorf("yai's next tokens %v, mlx-lm's %v", got, want)
	}
}

// nextTokens is m's greedy next token at each position of ids.
func nextTokens(t *testing.T, m *model.Model, ids []int32) []int32 {
	t.Helper()
	var next []int32
	err := mlx.Do(func() error {
		x := mlx.FromSlice(ids, 1, len(ids))
		logits := m.Forward(x)
		arg := mlx.Argmax(logits, -1, false)
		next = arg.Ints()
		mlx.Free(x, logits, arg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return next
}
