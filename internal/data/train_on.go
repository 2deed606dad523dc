package data

import (
	"fmt"

	"github.com/yai-dev/yai/internal/tokenizer"
)

// TrainOn says which tokens of a row the loss counts.
type TrainOn int

const (
	// TrainAll counts every token, as mlx-lm does without mask_prompt.
	TrainAll TrainOn = iota
	// TrainLast counts the last message only, after everything before it and the generation
	// prompt: mlx-lm's mask_prompt. On a multi-turn chat the earlier assistant turns are not
	// trained.
	TrainLast
	// TrainAssistant counts every assistant turn of a chat (the completion of a prompt and
	// completion row) and masks system, user and tool turns. Text rows are refused.
	TrainAssistant
	// TrainAuto is TrainAssistant for chat and prompt/completion rows and TrainAll for text.
	TrainAuto
)

var trainOnNames = [...]string{"all", "last", "assistant", "auto"}

func (t TrainOn) String() string {
	if t < 0 || int(t) >= len(trainOnNames) {
		return fmt.Sprintf("TrainOn(%d)", int(t))
	}
	return trainOnNames[t]
}

// ParseTrainOn reads a train_on setting: all, last, assistant or auto.
func ParseTrainOn(s string) (TrainOn, error) {
	for i, name := range trainOnNames {
		if s == name {
			return TrainOn(i), nil
		}
	}
	return 0, fmt.Errorf("train_on: unknown value %q (one of assistant, last, all, auto)", s)
}

// Span is a range [Start, End) of an example's tokens.
type Span = tokenizer.Span

// Targets counts the tokens whose prediction the loss counts when the example is cut to its
// first n tokens (max_seq_length), as the trainer gathers them: mlx-lm's targets offset..n
// (the step after the last token predicting padding, none past a cut), or the tokens of the
// spans after the first.
func (e Example) Targets(n int) int {
	kept := min(len(e.Tokens), n)
	if e.Spans != nil {
		count := 0
		for _, s := range e.Spans {
			count += max(0, min(s.End, kept)-max(s.Start, 1))
		}
		return count
	}
	last := kept // the padding step after the last token
	if len(e.Tokens) >= n {
		last = kept - 1
	}
	return max(0, last-max(e.Offset, 1)+1)
}
