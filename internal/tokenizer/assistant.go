package tokenizer

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
)

// AssistantSpans renders a conversation as ApplyChatTemplate(messages, tools, false) does and
// returns, with the text, the byte spans that its assistant messages wrote there: what a
// model trained on the conversation learns to produce, in order.
//
// A template that marks them with {% generation %} gives its marks, as transformers'
// return_assistant_tokens_mask reads them. Otherwise each assistant message's span is found
// by rendering prefixes of the conversation: it starts where the conversation before it,
// rendered with the generation prompt, ends (the model's turn begins there at inference) and
// it ends with the template's end-of-turn marker (<|im_end|>, <|eot_id|>, <end_of_turn>, …,
// learned so that the model stops), not the whitespace after it. A template whose renderings
// of a prefix do not begin the whole rendering cannot be read so, and is an error naming the
// message.
func (t *Tokenizer) AssistantSpans(messages []Message, tools []any) (string, []Span, error) {
	if t.chat == nil {
		return "", nil, ErrNoChatTemplate
	}
	if t.chat.generation {
		rec := &generationRecorder{}
		text, err := t.render(messages, tools, false, nil, rec)
		if err != nil {
			return "", nil, err
		}
		if rec.lost {
			return "", nil, fmt.Errorf("%s: chat_template: a {%% generation %%} block renders inside a macro or filter block, where its place in the text is unknown", t.chat.source)
		}
		return text, rec.spans, nil
	}
	text, err := t.render(messages, tools, false, nil, nil)
	if err != nil {
		return "", nil, err
	}
	var spans []Span
	for i, m := range messages {
		if m["role"] != "assistant" {
			continue
		}
		span, err := t.assistantSpan(text, messages, tools, i)
		if err != nil {
			return "", nil, err
		}
		if span.End > span.Start {
			spans = append(spans, span)
		}
	}
	return text, spans, nil
}

// assistantSpan finds message i (an assistant's) in text, the rendering of the whole
// conversation.
func (t *Tokenizer) assistantSpan(text string, messages []Message, tools []any, i int) (Span, error) {
	prompt, err := t.render(messages[:i], tools, true, nil, nil)
	if err != nil {
		return Span{}, fmt.Errorf("messages[%d]: rendering the conversation before it: %w", i, err)
	}
	if !strings.HasPrefix(text, prompt) {
		return Span{}, fmt.Errorf("messages[%d]: the chat template renders the conversation before this assistant message, with its generation prompt, differently from the start of the whole conversation, so the message's tokens cannot be told apart; train_on: last or all does not need them", i)
	}
	start := len(prompt)
	upTo, err := t.render(messages[:i+1], tools, false, nil, nil)
	if err != nil {
		return Span{}, fmt.Errorf("messages[%d]: rendering the conversation up to it: %w", i, err)
	}
	// The turn as the template renders it when it is the last one, as far as the whole
	// rendering agrees with it.
	n := 0
	if strings.HasPrefix(upTo, prompt) {
		n = commonPrefix(text[start:], upTo[start:])
	}
	turn := strings.TrimRightFunc(text[start:start+n], unicode.IsSpace)
	marker := t.turnEnd()
	if marker == "" || strings.HasSuffix(turn, marker) {
		return Span{start, start + len(turn)}, nil
	}
	// The template renders this turn differently when another follows (Qwen3 drops the
	// reasoning of earlier turns, Phi-3 ends the last one with EOS): the turn ends at the
	// first end-of-turn marker after its content.
	from := start
	if content, ok := messages[i]["content"].(string); ok {
		if c := strings.TrimSpace(content); c != "" {
			if at := strings.Index(text[start:], c); at >= 0 {
				from = start + at + len(c)
			}
		}
	}
	at := strings.Index(text[from:], marker)
	if at < 0 {
		return Span{}, fmt.Errorf("messages[%d]: the end of this assistant turn (%q) is not found in the rendered conversation; train_on: last or all does not need it", i, marker)
	}
	return Span{start, from + at + len(marker)}, nil
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// Probe messages for turnEnd: texts no template changes.
const (
	probeUser      = "yai-probe-user-2f9c"
	probeAssistant = "yai-probe-assistant-7d41"
	probeNext      = "yai-probe-next-b3e8"
)

// turnEnd is the text the template puts after an assistant message's content to end its
// turn when another turn follows (<|im_end|>, <|eot_id|>, <end_of_turn>, " </s>", …), without
// the whitespace after it; "" when the template adds none or cannot render the probe.
func (t *Tokenizer) turnEnd() string {
	t.turnEndOnce.Do(func() {
		alone, err1 := t.render([]Message{{"role": "user", "content": probeUser}, {"role": "assistant", "content": probeAssistant}}, nil, false, nil, nil)
		followed, err2 := t.render([]Message{{"role": "user", "content": probeUser}, {"role": "assistant", "content": probeAssistant},
			{"role": "user", "content": probeNext}}, nil, false, nil, nil)
		if err := errors.Join(err1, err2); err != nil {
			return
		}
		a, b := strings.Index(alone, probeAssistant), strings.Index(followed, probeAssistant)
		if a < 0 || b < 0 {
			return
		}
		tailA, tailB := alone[a+len(probeAssistant):], followed[b+len(probeAssistant):]
		end := tailA[:commonPrefix(tailA, tailB)]
		if len(end) < len(tailA) {
			// The two part within what follows the marker (Phi-3: EOS or the next turn's
			// <|user|>, which share "<|"): keep what ends at a space.
			if at := strings.LastIndexFunc(end, unicode.IsSpace); at >= 0 {
				end = end[:at]
			}
		}
		end = strings.TrimRightFunc(end, unicode.IsSpace)
		if !strings.Contains(end, probeNext) {
			t.turnEndMarker = end
		}
	})
	return t.turnEndMarker
}

// turnEndState caches turnEnd; a Tokenizer is shared between goroutines.
type turnEndState struct {
	turnEndOnce   sync.Once
	turnEndMarker string
}
