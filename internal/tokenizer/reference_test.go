package tokenizer

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/internal/testenv"
)

// runReference runs a reference script of testdata with the venv python: input goes to
// its stdin as JSON, its stdout is decoded into out.
func runReference(t testing.TB, input, out any, script string, args ...string) {
	t.Helper()
	job, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Python(t), append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Stdin = bytes.NewReader(job)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("%s %v: %v", script, args, err)
	}
}

// hfEncode runs the HF tokenizers library on texts; for each text it returns the ids without
// and with special tokens.
func hfEncode(t testing.TB, dir string, texts []string) [][]int32 {
	t.Helper()
	var ids [][]int32
	runReference(t, texts, &ids, "hf_reference.py", "encode", dir)
	return ids
}

// fragments are glued at random into strings that stress the pre-tokenizers' edge cases.
var fragments = []string{
	"a", "Zq", "word", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "'s", "'LL", "'x", "'",
	"1", "123", "4567", "٣", "²", "中文", "日本", "😀", "👍🏽", "é", "e\u0301", "ǅ", "Straße",
	"<|eot_id|>", "<|begin_of_text|>", "<s>", "</s>", "<unk>", "<|endoftext|>", "\u00a0", "\u3000",
	"\u2003", "\u0085", "\v", "\f", "!", "?!", "...", "_", "-", "(", "))", "\"", "`", "$", "#", "→", "∑",
	"مرحبا", "привет", "▁", "\x00", "\x7f",
}

func randomTexts(n int) []string {
	rng := rand.New(rand.NewPCG(7, 11))
	texts := make([]string, n)
	for i := range texts {
		var sb strings.Builder
		for range 1 + rng.IntN(12) {
			sb.WriteString(fragments[rng.IntN(len(fragments))])
		}
		texts[i] = sb.String()
	}
	return texts
}

// TestEncodeMatchesLiveHF runs the venv's tokenizers on the fixture corpus plus random
// strings, so that a change of the reference or of this package shows up at once.
func TestEncodeMatchesLiveHF(t *testing.T) {
	var corpus []string
	data, err := os.ReadFile(filepath.Join("testdata", "corpus.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &corpus); err != nil {
		t.Fatal(err)
	}
	texts := append(corpus, randomTexts(400)...)
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			tok, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := hfEncode(t, dir, texts)
			failures := 0
			for i, text := range texts {
				for k, special := range []bool{false, true} {
					diff := cmp.Diff(want[2*i+k], nonNil(tok.Encode(text, special)))
					if diff != "" && failures < 10 {
						failures++
						t.Errorf("Encode(%q, %v) mismatch (-hf +yai):\n%s", text, special, diff)
					}
				}
			}
		})
	}
}
