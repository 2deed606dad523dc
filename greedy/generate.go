package greedy

import (
	"errors"
	"slices"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/model"
)

// Options bound a generation.
type Options struct {
	// MaxTokens is the most tokens generated.
	MaxTokens int
	// Stop ids end the generation; the stop token is not returned.
	Stop []int32
}

// afterToken, when set by a test, runs after each generated token.
var afterToken func()

// Generate returns the greedy continuation of prompt. Every MLX array it makes is freed
// before it returns; the number alive stays flat from token to token.
func Generate(m *model.Model, prompt []int32, opts Options) ([]int32, error) {
	if len(prompt) == 0 {
		return nil, errors.New("greedy: empty prompt")
	}
	var out []int32
	err := mlx.Do(func() error {
		c := newKVCache(len(m.Layers))
		defer c.free()
		// Prefill everything but the last prompt token, as mlx-lm does.
		if len(prompt) > 1 {
			step(m, prompt[:len(prompt)-1], c).Free()
		}
		next := prompt[len(prompt)-1]
		for len(out) < opts.MaxTokens {
			logits := step(m, []int32{next}, c)
			arg := mlx.Argmax(logits, -1, false)
			next = arg.Ints()[0]
			mlx.Free(logits, arg)
			if slices.Contains(opts.Stop, next) {
				break
			}
			out = append(out, next)
			if afterToken != nil {
				afterToken()
			}
		}
		return nil
	})
	return out, err
}

// step feeds tokens and returns the last position's logits, evaluated along with the cache
// so no graph outlives the step.
func step(m *model.Model, tokens []int32, c *kvCache) *mlx.Array {
	ids := mlx.FromSlice(tokens, 1, len(tokens))
	logits := forward(m, ids, c)
	ids.Free()
	mlx.Eval(append(c.arrays(), logits)...)
	return logits
}
