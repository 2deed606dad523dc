package ggufexport

import (
	"bytes"
	"encoding/json"
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
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/mlx"
)

// spmTexts cover what a SentencePiece vocabulary handles apart: leading, repeated and
// trailing spaces, newlines and tabs, digits, letters outside the vocabulary (byte
// fallback), special tokens inside the text.
var spmTexts = []string{
	"The river rose slowly through the night.",
	" leading space",
	"  two leading spaces and  two   inner",
	"trailing space ",
	"line one\nline two\n\nline four\n",
	"\ttab\tseparated\tvalues",
	"Numbers: 0 12 345 6789 3.14159 1,000,000",
	"Café naïve résumé façade",
	"日本語のテキストと中文",
	"Emoji 🙂🚀 and symbols ∑ ∞ ≠ ©",
	"Привет, мир! Γειά σου κόσμε.",
	"",
	" ",
	"\n",
	"a",
	"<s>hello</s> world",
	"<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>",
	"x<unk>y <pad> z",
	"▁literal▁marks ▁",
}

// spmModel writes a tiny model of the preset with a SentencePiece tokenizer (Gemma's settings
// or Llama 2's), tokenizer.json only, as a Hugging Face repository without tokenizer.model.
func spmModel(t *testing.T, preset, kind string) string {
	t.Helper()
	_, pythonPath := testenv.Converter(t)
	tokDir := t.TempDir()
	c := exec.Command(testenv.Python(t), "testdata/spm_tokenizer.py", "make", tokDir, kind)
	c.Env = append(os.Environ(), "PYTHONPATH="+pythonPath, "TRANSFORMERS_VERBOSITY=error")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if _, err := c.Output(); err != nil {
		t.Fatalf("spm_tokenizer.py make: %v\n%s", err, stderr.String())
	}
	var tj hfTokenizer
	if err := readJSON(filepath.Join(tokDir, "tokenizer.json"), &tj); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), preset)
	spec := model.TinyPresets[preset]
	for _, a := range tj.AddedTokens { // transformers' Gemma tokenizer adds <mask> after the vocabulary
		spec.Config.VocabSize = max(spec.Config.VocabSize, a.ID+1)
	}
	if err := model.WriteTiny(dir, spec); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json"} {
		os.Remove(filepath.Join(dir, name))
	}
	entries, err := os.ReadDir(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(tokDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// hubForm writes, in a new directory, dir's tokenizer.json with Llama 2's normalizer as the
// Hub's Llama 2, Mistral and Phi-3 repositories have it (transformers now writes a Metaspace
// pre-tokenizer instead): ▁ prepended to every text, spaces turned into ▁.
func hubForm(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tj map[string]any
	if err := json.Unmarshal(b, &tj); err != nil {
		t.Fatal(err)
	}
	tj["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{
		map[string]any{"type": "Prepend", "prepend": "▁"},
		map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
	}}
	tj["pre_tokenizer"] = nil
	out := t.TempDir()
	if b, err = json.Marshal(tj); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// setJSON sets a top-level key of a JSON file.
func setJSON(t *testing.T, path, key string, value any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = value
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// beginsWithSpace says whether the text, or a part of it after a special token, begins with
// a space (or ▁): where a Metaspace pre-tokenizer and SentencePiece differ.
func beginsWithSpace(text string) bool {
	for _, sp := range []string{"<s>", "</s>", "<unk>", "<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"} {
		text = strings.ReplaceAll(text, sp, "\x00")
	}
	for _, part := range strings.Split(text, "\x00") {
		if strings.HasPrefix(part, " ") || strings.HasPrefix(part, "▁") {
			return true
		}
	}
	return false
}

// llamaCppTokenize runs testdata/llamacpp_tokenize.mjs: llama.cpp's tokenizer of a GGUF.
func llamaCppTokenize(t *testing.T, modelPath string, texts []string) [][]int32 {
	t.Helper()
	root := testenv.ModuleRoot(t)
	module := filepath.Join(root, ".node", "node_modules", "node-llama-cpp")
	if _, err := os.Stat(filepath.Join(module, "dist", "index.js")); err != nil {
		t.Fatalf("node-llama-cpp is missing from %s: run `go tool task setup`", module)
	}
	in, _ := json.Marshal(map[string]any{"module": module, "model": modelPath, "texts": texts})
	cmd := exec.Command("node", filepath.Join(root, "internal", "ggufexport", "testdata", "llamacpp_tokenize.mjs"))
	cmd.Env = append(os.Environ(), "NODE_LLAMA_CPP_SKIP_DOWNLOAD=true", "NODE_LLAMA_CPP_GPU=false")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("llamacpp_tokenize.mjs: %v\n%s", err, stderr.String())
	}
	var ids [][]int32
	if err := json.Unmarshal(out, &ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

// hfTokenize encodes the texts with Hugging Face tokenizers (no special tokens added).
func hfTokenize(t *testing.T, dir string, texts []string) [][]int32 {
	t.Helper()
	in, _ := json.Marshal(texts)
	c := exec.Command(testenv.Python(t), "testdata/spm_tokenizer.py", "encode", dir)
	c.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("spm_tokenizer.py encode: %v\n%s", err, stderr.String())
	}
	var ids [][]int32
	if err := json.Unmarshal(out, &ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

// A SentencePiece tokenizer (BPE with byte fallback in tokenizer.json, no tokenizer.model)
// is written as llama.cpp's "llama" vocabulary: llama.cpp tokenizes the texts to the ids
// Hugging Face and yai give, and yai's GGUF import reads it back to the same tokenizer.
func TestSentencePieceTokenizerExports(t *testing.T) {
	for _, c := range []struct {
		preset, kind string
	}{{"tiny", "llama"}, {"tiny", "llama-hub"}, {"tiny-gemma2", "gemma"}} {
		t.Run(c.preset+"/"+c.kind, func(t *testing.T) {
			gemma := c.kind == "gemma"
			dir := spmModel(t, c.preset, map[bool]string{true: "gemma", false: "llama"}[gemma])
			if gemma {
				// As the Hub's Gemma repositories have it: no pre-tokenizer (transformers now
				// writes a Split at spaces the normalizer has already replaced, which yai's
				// tokenizer does not read).
				setJSON(t, filepath.Join(dir, "tokenizer.json"), "pre_tokenizer", nil)
			}
			if c.kind == "llama-hub" {
				hub := hubForm(t, dir)
				b, _ := os.ReadFile(filepath.Join(hub, "tokenizer.json"))
				if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Merged(dir, "", filepath.Join(t.TempDir(), "merged"), MergedOptions{Type: gguf.F32, Name: "tiny"})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(res.Dir, res.Files[0])
			g, err := gguf.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			if m, _ := g.Metadata.String("tokenizer.ggml.model"); m != "llama" {
				t.Errorf("tokenizer.ggml.model %q, want llama", m)
			}
			if add, err := g.Metadata.Bool("tokenizer.ggml.add_space_prefix"); gemma && (err != nil || add) {
				t.Errorf("Gemma: tokenizer.ggml.add_space_prefix %v (%v), want false", add, err)
			} else if !gemma && err == nil {
				t.Errorf("Llama: tokenizer.ggml.add_space_prefix written (%v), want llama.cpp's default", add)
			}
			if add, _ := g.Metadata.Bool("tokenizer.ggml.add_bos_token"); !add {
				t.Errorf("tokenizer.ggml.add_bos_token is not true")
			}
			g.Close()

			tok, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			back := filepath.Join(t.TempDir(), "imported")
			if _, err := ggufimport.Import(file, back, ggufimport.Options{Dtype: mlx.Float32}); err != nil {
				t.Fatal(err)
			}
			backTok, err := tokenizer.Load(back)
			if err != nil {
				t.Fatal(err)
			}
			hf := hfTokenize(t, dir, spmTexts)
			cpp := llamaCppTokenize(t, file, spmTexts)
			// What SentencePiece gives: the same but for a Metaspace pre-tokenizer's texts that
			// begin with a space, which llama.cpp (and the GGUF read back) give one ▁ more.
			spm := hf
			if c.kind == "llama" {
				spm = hfTokenize(t, hubForm(t, dir), spmTexts)
			}
			differ := 0
			for i, text := range spmTexts {
				if yai := tok.Encode(text, false); !slices.Equal(yai, hf[i]) {
					t.Errorf("%q: yai %v, Hugging Face %v", text, yai, hf[i])
				}
				if !slices.Equal(spm[i], hf[i]) {
					differ++
					if !beginsWithSpace(text) {
						t.Errorf("%q: SentencePiece's form %v, Hugging Face %v", text, spm[i], hf[i])
					}
				}
				if !slices.Equal(cpp[i], spm[i]) {
					t.Errorf("%q: llama.cpp %v, want %v", text, cpp[i], spm[i])
				}
				if got := backTok.Encode(text, false); !slices.Equal(got, spm[i]) {
					t.Errorf("%q: imported back %v, want %v", text, got, spm[i])
				}
			}
			t.Logf("%d texts, %d beginning with a space tokenized apart from Hugging Face's", len(spmTexts), differ)
		})
	}
}

// The SentencePiece forms of tokenizer.json llama.cpp's vocabulary runs, with or without
// the space prefix, and the ones it does not.
func TestSentencePieceSpacePrefix(t *testing.T) {
	const (
		space   = `{"type": "Replace", "pattern": {"String": " "}, "content": "▁"}`
		prepend = `{"type": "Prepend", "prepend": "▁"}`
	)
	for _, c := range []struct {
		normalizer, pre string
		want            bool
		ok              bool
	}{
		{`{"type": "Sequence", "normalizers": [` + prepend + `, ` + space + `]}`, `null`, true, true}, // Llama 2
		{space, `null`, false, true}, // Gemma
		{space, `{"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}`, false, true},
		{`null`, `{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": false}`, true, true},
		{`null`, `{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}`, true, true},
		{`null`, `{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false}`, false, true},
		{`null`, `{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}`, false, false},
		{`{"type": "Lowercase"}`, `null`, false, false},
		{`null`, `null`, false, false},
	} {
		got, err := spmSpacePrefix(json.RawMessage(c.normalizer), json.RawMessage(c.pre))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("normalizer %s, pre-tokenizer %s: %v, %v; want %v (supported %v)", c.normalizer, c.pre, got, err, c.want, c.ok)
		}
	}
}

// Each piece scores minus the rank of the first merge that makes it, so that llama.cpp's
// highest-score-first merging follows the merges' order.
func TestSentencePieceScoresFollowTheMerges(t *testing.T) {
	tokens := []string{"<unk>", "<s>", "<0x41>", "a", "b", "ab", "ba", "aba", "zz", "[PAD9]"}
	types := []int32{tokenControl, tokenControl, tokenNormal, tokenNormal, tokenNormal, tokenNormal, tokenNormal, tokenNormal, tokenNormal, tokenUnused}
	set := []bool{true, true, true, true, true, true, true, true, true, false}
	kvs := spmKeys(tokens, types, set, []string{"b a", "a b", "ab a", "a ba"}, "<unk>", true)
	var scores []float32
	for _, kv := range kvs {
		if kv.Key == "tokenizer.ggml.scores" {
			scores = kv.Value.([]float32)
		}
	}
	want := []float32{0, -1000, 0, -4, -4, -1, 0, -2, -4, -10000}
	wantTypes := []int32{tokenUnknown, tokenControl, tokenByte, tokenNormal, tokenNormal, tokenNormal, tokenNormal, tokenNormal, tokenNormal, tokenUnused}
	if !slices.Equal(scores, want) || !slices.Equal(types, wantTypes) {
		t.Errorf("scores %v, types %v; want %v, %v", scores, types, want, wantTypes)
	}
}
