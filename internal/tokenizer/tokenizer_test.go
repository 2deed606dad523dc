package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixtureNames are the tokenizers tokenizer/testdata/gen_fixtures.py trains.
var fixtureNames = []string{"llama3", "gpt2", "spm", "metaspace"}

type encodeCase struct {
	Text        string  `json:"text"`
	IDs         []int32 `json:"ids"`
	IDsSpecial  []int32 `json:"ids_special"`
	Decoded     string  `json:"decoded"`
	DecodedSkip string  `json:"decoded_skip"`
}

type chatCase struct {
	Name                string          `json:"name"`
	Messages            json.RawMessage `json:"messages"`
	Tools               json.RawMessage `json:"tools"`
	AddGenerationPrompt bool            `json:"add_generation_prompt"`
	Text                *string         `json:"text"`
	IDs                 []int32         `json:"ids"`
	Error               *string         `json:"error"`
}

type expectedFile struct {
	Encode []encodeCase `json:"encode"`
	Chat   []chatCase   `json:"chat"`
}

func loadFixture(t testing.TB, name string) (*Tokenizer, expectedFile) {
	t.Helper()
	dir := filepath.Join("testdata", name)
	tok, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected expectedFile
	if err := json.Unmarshal(data, &expected); err != nil {
		t.Fatal(err)
	}
	return tok, expected
}

func TestEncodeMatchesHF(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			tok, expected := loadFixture(t, name)
			for _, c := range expected.Encode {
				if diff := cmp.Diff(c.IDs, nonNil(tok.Encode(c.Text, false))); diff != "" {
					t.Errorf("Encode(%q, false) mismatch (-hf +yai):\n%s", c.Text, diff)
				}
				if diff := cmp.Diff(c.IDsSpecial, nonNil(tok.Encode(c.Text, true))); diff != "" {
					t.Errorf("Encode(%q, true) mismatch (-hf +yai):\n%s", c.Text, diff)
				}
			}
		})
	}
}

func TestDecodeMatchesHF(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			tok, expected := loadFixture(t, name)
			for _, c := range expected.Encode {
				if got := tok.Decode(c.IDsSpecial, false); got != c.Decoded {
					t.Errorf("Decode(%v, false) = %q, HF %q", c.IDsSpecial, got, c.Decoded)
				}
				if got := tok.Decode(c.IDsSpecial, true); got != c.DecodedSkip {
					t.Errorf("Decode(%v, true) = %q, HF %q", c.IDsSpecial, got, c.DecodedSkip)
				}
			}
		})
	}
}

// parseMessages decodes fixture messages keeping key order, as the data package does.
func parseMessages(t testing.TB, raw json.RawMessage) []Message {
	t.Helper()
	v, err := ParseJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	for _, item := range v.([]any) {
		obj := item.(*Object)
		m := Message{}
		for _, k := range obj.Keys {
			m[k] = obj.Values[k]
		}
		out = append(out, m)
	}
	return out
}

func parseTools(t testing.TB, raw json.RawMessage) []any {
	t.Helper()
	v, err := ParseJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		return nil
	}
	return v.([]any)
}

func TestChatTemplateMatchesTransformers(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			tok, expected := loadFixture(t, name)
			for _, c := range expected.Chat {
				got, err := tok.ApplyChatTemplate(parseMessages(t, c.Messages), parseTools(t, c.Tools), c.AddGenerationPrompt)
				if c.Error != nil {
					if err == nil {
						t.Errorf("%s (generation prompt %v): rendered %q, transformers raised %q", c.Name, c.AddGenerationPrompt, got, *c.Error)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s (generation prompt %v): %v", c.Name, c.AddGenerationPrompt, err)
					continue
				}
				if diff := cmp.Diff(*c.Text, got); diff != "" {
					t.Errorf("%s (generation prompt %v) mismatch (-transformers +yai):\n%s", c.Name, c.AddGenerationPrompt, diff)
				}
				if diff := cmp.Diff(c.IDs, tok.Encode(got, false)); diff != "" {
					t.Errorf("%s (generation prompt %v) ids mismatch (-transformers +yai):\n%s", c.Name, c.AddGenerationPrompt, diff)
				}
			}
		})
	}
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

func TestSpecialTokens(t *testing.T) {
	tok, err := Load(filepath.Join("testdata", "llama3"))
	if err != nil {
		t.Fatal(err)
	}
	bos, ok := tok.BOS()
	if !ok || tok.Token(bos) != "<|begin_of_text|>" {
		t.Errorf("BOS() = %d (%q), %v; want <|begin_of_text|>", bos, tok.Token(bos), ok)
	}
	eos := tok.EOS()
	if len(eos) != 1 || tok.Token(eos[0]) != "<|eot_id|>" {
		t.Errorf("EOS() = %v; want [<|eot_id|>]", eos)
	}
	if tok.VocabSize() < 1000 {
		t.Errorf("VocabSize() = %d, want at least 1000", tok.VocabSize())
	}
	if got := tok.Encode("<|eot_id|>", false); len(got) != 1 || got[0] != eos[0] {
		t.Errorf("Encode(<|eot_id|>) = %v, want [%d]", got, eos[0])
	}
	if strings.Contains(tok.Decode(tok.Encode("<|eot_id|>hi", true), true), "<|") {
		t.Error("Decode(skipSpecial) kept a special token")
	}
}
