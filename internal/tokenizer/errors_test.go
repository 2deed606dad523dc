package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadErrors checks that bad tokenizer files give one error naming the file and the place.
func TestLoadErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "gpt2", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, json, want string
	}{
		{"syntax", "{\n  \"model\": {,\n}", "tokenizer.json:2:13: invalid character ','"},
		{"unsupported model", `{"model": {"type": "WordPiece", "vocab": {}}}`, `tokenizer.json: $.model.type: unsupported model type "WordPiece"`},
		{"missing model", `{"added_tokens": []}`, "tokenizer.json: $.model: missing model"},
		{"unsupported pre-tokenizer", strings.Replace(string(good), `"type": "ByteLevel"`, `"type": "Whitespace"`, 1), `tokenizer.json: $.pre_tokenizer.type: unsupported pre-tokenizer "Whitespace"`},
		{"wrong type", `{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}`, "tokenizer.json:1:48: $.model.vocab: expected int32, found JSON string"},
		{"bad merge", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`, `tokenizer.json: $.model.merges[0]: merge "a" "b" uses a token missing from the vocabulary`},
		{"unknown decoder", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "CTC"}}`, `tokenizer.json: $.decoder.type: unsupported decoder "CTC"`},
		{"sequence path", `{"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "BertNormalizer"}]}}`, `$.normalizer.normalizers[1].type: unsupported normalizer "BertNormalizer"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "tokenizer.json") {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "gpt2", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `{"eos_token": "<|not_a_token|>"}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	want := `tokenizer_config.json: $.eos_token: token "<|not_a_token|>" is not in the vocabulary`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to contain %q", err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"chat_template": "{% for %}"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json: chat_template") {
		t.Errorf("bad template error = %v", err)
	}
}
