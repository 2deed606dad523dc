package greedy

import (
	"fmt"

	"github.com/yai-dev/yai/model"
	"github.com/yai-dev/yai/tokenizer"
)

// Chat answers one user message: the tokenizer's chat template with the generation prompt,
// greedy decoding until an end-of-turn id or maxTokens, the answer decoded without special
// tokens.
func Chat(m *model.Model, tok *tokenizer.Tokenizer, message string, maxTokens int) (string, error) {
	text, err := tok.ApplyChatTemplate([]tokenizer.Message{{"role": "user", "content": message}}, nil, true)
	if err != nil {
		return "", fmt.Errorf("greedy: %w", err)
	}
	// The template writes the special tokens itself, as apply_chat_template(tokenize=True).
	ids, err := Generate(m, tok.Encode(text, false), Options{MaxTokens: maxTokens, Stop: tok.EOS()})
	if err != nil {
		return "", err
	}
	return tok.Decode(ids, true), nil
}
