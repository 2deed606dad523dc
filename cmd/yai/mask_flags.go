package main

import (
	"flag"
	"fmt"

	"github.com/yai-dev/yai/internal/data"
)

// maskFlags choose the tokens a loss counts, as a recipe's data stage does: --train-on, and
// mlx-lm's --mask-prompt (train_on: last).
type maskFlags struct {
	on         string
	maskPrompt bool
}

// register adds the flags; byDefault says what counts when neither is given.
func (m *maskFlags) register(fs *flag.FlagSet, byDefault string) {
	fs.StringVar(&m.on, "train-on", "", "tokens the loss counts: assistant (every assistant turn), last (the last message, as mlx-lm's mask_prompt), all, or auto (assistant, all for text rows) (default: "+byDefault+")")
	fs.BoolVar(&m.maskPrompt, "mask-prompt", false, "mlx-lm's flag: --train-on last")
}

// trainOn is the choice; all when no flag says otherwise.
func (m *maskFlags) trainOn() (data.TrainOn, error) {
	switch {
	case m.maskPrompt && m.on != "" && m.on != "last":
		return 0, fmt.Errorf("--mask-prompt is --train-on last, but --train-on is %s; give one", m.on)
	case m.maskPrompt:
		return data.TrainLast, nil
	case m.on == "":
		return data.TrainAll, nil
	}
	t, err := data.ParseTrainOn(m.on)
	if err != nil {
		return 0, fmt.Errorf("--train-on: unknown value %q (one of assistant, last, all, auto)", m.on)
	}
	return t, nil
}
