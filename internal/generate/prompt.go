package generate

import (
	"errors"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/tokenizer"
)

// PromptTokens encodes a user prompt as mlx_lm.generate does: through the chat template
// with a generation prompt (the template supplies BOS), or, when raw or when the tokenizer
// has no template, as plain text with the tokenizer's special tokens.
func PromptTokens(tok *tokenizer.Tokenizer, system, user string, raw bool) ([]int32, error) {
	if raw {
		return tok.Encode(user, true), nil
	}
	var msgs []tokenizer.Message
	if system != "" {
		msgs = append(msgs, tokenizer.Message{"role": "system", "content": system})
	}
	msgs = append(msgs, tokenizer.Message{"role": "user", "content": user})
	ids, err := ChatTokens(tok, msgs)
	if errors.Is(err, tokenizer.ErrNoChatTemplate) {
		return tok.Encode(user, true), nil
	}
	return ids, err
}

// ChatTokens renders a conversation with the chat template and a generation prompt.
func ChatTokens(tok *tokenizer.Tokenizer, msgs []tokenizer.Message) ([]int32, error) {
	text, err := tok.ApplyChatTemplate(msgs, nil, true)
	if err != nil {
		return nil, err
	}
	return tok.Encode(text, false), nil
}

// Answer is the greedy reply to one user message, through the chat template, up to the
// tokenizer's end of turn or maxTokens, decoded without special tokens.
func Answer(m *model.Model, tok *tokenizer.Tokenizer, message string, maxTokens int) (string, error) {
	ids, err := PromptTokens(tok, "", message, false)
	if err != nil {
		return "", err
	}
	var out []int32
	_, err = Generate(m, ids, Options{MaxTokens: maxTokens, Stop: tok.EOS()}, func(id int32) error {
		out = append(out, id)
		return nil
	})
	if err != nil {
		return "", err
	}
	return tok.Decode(out, true), nil
}
