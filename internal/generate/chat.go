package generate

import "github.com/yai-dev/yai/internal/tokenizer"

// Chat is a multi-turn conversation: each turn renders the whole history through the chat
// template, so the model sees every earlier message, and appends the reply to it.
type Chat struct {
	Loaded   *Loaded
	System   string // optional system message, kept across Reset
	Options  Options
	messages []tokenizer.Message
}

// Messages is the conversation so far (system message excluded).
func (c *Chat) Messages() []tokenizer.Message { return c.messages }

// Reset forgets the conversation.
func (c *Chat) Reset() { c.messages = nil }

// Prompt is the token ids the next turn would send for user.
func (c *Chat) Prompt(user string) ([]int32, error) {
	var msgs []tokenizer.Message
	if c.System != "" {
		msgs = append(msgs, tokenizer.Message{"role": "system", "content": c.System})
	}
	msgs = append(msgs, c.messages...)
	msgs = append(msgs, tokenizer.Message{"role": "user", "content": user})
	return ChatTokens(c.Loaded.Tokenizer, msgs)
}

// Send answers user, streaming the reply's text to emit as it is decoded, and keeps both
// messages in the history. On error the history is left as it was.
func (c *Chat) Send(user string, emit func(text string)) (reply string, st Stats, err error) {
	ids, err := c.Prompt(user)
	if err != nil {
		return "", st, err
	}
	stream := NewTextStream(c.Loaded.Tokenizer)
	var out []int32
	st, err = Generate(c.Loaded.Model, ids, c.Options, func(tok int32) error {
		out = append(out, tok)
		if text := stream.Add(tok); text != "" {
			emit(text)
		}
		return nil
	})
	if err != nil {
		return "", st, err
	}
	if text := stream.Flush(); text != "" {
		emit(text)
	}
	reply = c.Loaded.Tokenizer.Decode(out, true)
	c.messages = append(c.messages,
		tokenizer.Message{"role": "user", "content": user},
		tokenizer.Message{"role": "assistant", "content": reply})
	return reply, st, nil
}
