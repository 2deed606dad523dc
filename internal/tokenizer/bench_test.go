package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/yai-dev/yai/internal/testenv"
)

// FuzzByteLevelRoundTrip checks Decode(Encode(s)) == s for byte-level tokenizers, which lose
// nothing, and that no input makes Encode or Decode panic.
func FuzzByteLevelRoundTrip(f *testing.F) {
	for _, s := range append(randomTexts(20), "", "Hello world", "<|eot_id|> x", "\xff\xfe", "a\u0301") {
		f.Add(s)
	}
	var toks []*Tokenizer
	for _, name := range []string{"llama3", "gpt2"} {
		tok, err := Load(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		toks = append(toks, tok)
	}
	metaspace, err := Load(filepath.Join("testdata", "metaspace"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		metaspace.Decode(metaspace.Encode(s, true), false) // must not panic
		for _, tok := range toks {
			ids := tok.Encode(s, false)
			got := tok.Decode(ids, false)
			if utf8.ValidString(s) && got != s {
				t.Errorf("round trip of %q gave %q (ids %v)", s, got, ids)
			}
		}
	})
}

// benchmarkText is English-heavy prose mixed with the multilingual corpus, one line per Encode.
func benchmarkText(t testing.TB) []string {
	data, err := os.ReadFile(filepath.Join("testdata", "corpus.json"))
	if err != nil {
		t.Fatal(err)
	}
	var corpus []string
	if err := json.Unmarshal(data, &corpus); err != nil {
		t.Fatal(err)
	}
	prose := "Low-rank adapters train two small matrices per projection while the quantized base " +
		"weights stay frozen; the optimizer state is tiny, so a 4-bit 8B model fits in little memory. "
	var lines []string
	for i := range 4000 {
		lines = append(lines, fmt.Sprintf("%s Step %d: loss %.3f.", prose, i, 3.0/float64(i+1)))
		lines = append(lines, corpus[i%len(corpus)])
	}
	return append(lines, randomTexts(2000)...)
}

// BenchmarkEncode measures single-threaded Encode throughput on the Llama-3 style fixture and
// prints it next to HF tokenizers' throughput on the same lines, timed by hf_reference.py.
//
//	go test -run '^$' -bench Encode ./tokenizer/
func BenchmarkEncode(b *testing.B) {
	dir := filepath.Join("testdata", "llama3")
	lines := benchmarkText(b)
	tokens := 0
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		tok, err := Load(dir) // a fresh word cache each round, as on the Python side
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		tokens = 0
		for _, line := range lines {
			tokens += len(tok.Encode(line, false))
		}
		elapsed += time.Since(start)
	}
	yai := float64(tokens) * float64(b.N) / elapsed.Seconds()
	b.ReportMetric(yai, "tokens/s")

	file := filepath.Join(b.TempDir(), "lines.json")
	encoded, err := json.Marshal(lines)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(file, encoded, 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(testenv.Python(b), filepath.Join("testdata", "hf_reference.py"), "bench", dir, file, "3")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("hf_reference.py bench: %v\n%s", err, stderr.String())
	}
	var hf struct {
		TokensPerSecond float64 `json:"tokens_per_second"`
		Tokens          int     `json:"tokens"`
	}
	if err := json.Unmarshal(out, &hf); err != nil {
		b.Fatal(err)
	}
	if hf.Tokens != tokens {
		b.Fatalf("HF produced %d tokens, yai %d: the outputs differ", hf.Tokens, tokens)
	}
	b.ReportMetric(hf.TokensPerSecond, "hf-tokens/s")
	b.ReportMetric(yai/hf.TokensPerSecond, "yai/hf")
	b.Logf("encode throughput: yai %.0f tokens/s, HF tokenizers %.0f tokens/s, ratio %.2fx (%d lines, %d tokens)",
		yai, hf.TokensPerSecond, yai/hf.TokensPerSecond, len(lines), tokens)
}
