package generate

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// PrefillStep is how many prompt tokens one forward pass takes (mlx-lm's prefill_step_size).
const PrefillStep = 2048

// Options control one generation.
type Options struct {
	MaxTokens int // stop after this many tokens; must be positive
	Sampling  Sampling
	// Stop ends generation when produced; the stop token itself is not emitted. Usually the
	// tokenizer's EOS ids.
	Stop []int32
}

// Stats describe a finished generation with mlx-lm's definitions: prompt tokens/s counts
// the prompt over the time to the first token, generation tokens/s the emitted tokens over
// the time since the first one.
type Stats struct {
	PromptTokens     int
	PromptTPS        float64
	GenerationTokens int
	GenerationTPS    float64
	PeakMemory       uint64 // MLX peak during the generation, bytes
	FinishReason     string // "stop" (a stop token) or "length" (MaxTokens)
}

// Generate decodes from prompt with m and calls emit with each token as soon as it is
// known. emit returning an error ends generation with that error. It runs on the MLX
// thread; the model must stay loaded throughout.
func Generate(m *model.Model, prompt []int32, opts Options, emit func(token int32) error) (Stats, error) {
	var st Stats
	if len(prompt) == 0 {
		return st, errors.New("generate: empty prompt")
	}
	if opts.MaxTokens <= 0 {
		return st, errors.New("generate: max tokens must be positive")
	}
	if err := opts.Sampling.Check(m.Config.VocabSize); err != nil {
		return st, err
	}
	// Positions past the context were never trained: the answer would be garbage, silently.
	if n := m.Config.MaxPositionEmbeddings; n > 0 && len(prompt) > n {
		return st, fmt.Errorf("generate: the prompt is %d tokens, longer than the model's context of %d (max_position_embeddings in config.json): shorten it", len(prompt), n)
	}
	for i, id := range prompt {
		// An id past the embedding table would read outside it.
		if id < 0 || int(id) >= m.Config.VocabSize {
			return st, fmt.Errorf("generate: prompt token %d (position %d) is outside the model's vocabulary of %d", id, i, m.Config.VocabSize)
		}
	}
	err := mlx.Do(func() error {
		var err error
		st, err = run(m, prompt, opts, emit)
		return err
	})
	return st, err
}

// run is generate_step followed by stream_generate's bookkeeping. Like mlx-lm it computes
// token n+1 while token n is handed out, so the emit callback overlaps the next step.
func run(m *model.Model, prompt []int32, opts Options, emit func(int32) error) (Stats, error) {
	st := Stats{PromptTokens: len(prompt)}
	d := newDecoder(m)
	smp := newSampler(opts.Sampling)
	defer func() {
		d.free()
		smp.free()
	}()
	mlx.ResetPeakMemory()
	start := time.Now()

	rest := d.prefill(prompt)
	y := d.step(smp, mlx.FromSlice(rest, 1, len(rest)))
	mlx.AsyncEval(y)
	var tic time.Time
	for n := 0; ; n++ {
		// Queue token n+1 before handing out token n (mlx-lm computes one step past the
		// last token it yields, too).
		next := d.step(smp, reshapeToken(y))
		mlx.AsyncEval(next)
		if n == 0 {
			mlx.Eval(y)
			st.PromptTPS = float64(len(prompt)) / time.Since(start).Seconds()
			tic = time.Now()
		}
		tok := int32(y.Item())
		y.Free()
		if slices.Contains(opts.Stop, tok) {
			st.FinishReason = "stop"
			next.Free()
			break
		}
		st.GenerationTokens = n + 1
		if err := emit(tok); err != nil {
			next.Free()
			return st, err
		}
		if n+1 == opts.MaxTokens {
			st.FinishReason = "length"
			next.Free()
			break
		}
		if n%256 == 0 {
			mlx.ClearCache()
		}
		y = next
	}
	st.GenerationTPS = float64(st.GenerationTokens) / time.Since(tic).Seconds()
	st.PeakMemory = mlx.Memory().Peak
	return st, nil
}

// prefill runs all prompt tokens but the last through the model in PrefillStep chunks,
// filling the caches, and returns the tokens left for the first step (mlx-lm keeps one).
func (d *decoder) prefill(prompt []int32) []int32 {
	for len(prompt) > 1 {
		n := min(PrefillStep, len(prompt)-1)
		s := mlx.NewScope()
		h := d.m.Hidden(mlx.FromSlice(prompt[:n], 1, n), d.caches...)
		h.Free()
		mlx.Eval(d.caches.State()...)
		s.Close()
		mlx.ClearCache()
		prompt = prompt[n:]
	}
	return prompt
}

// step computes the next token (1,) from tokens (1, L), owned by the caller and detached
// from every scope; everything else it creates is freed. It takes ownership of tokens.
func (d *decoder) step(smp *sampler, tokens *mlx.Array) *mlx.Array {
	s := mlx.NewScope()
	defer s.Close()
	mlx.Detach(tokens)
	defer tokens.Free()
	logits := d.lastLogits(tokens)
	lse := mlx.LogSumExp(logits, true, -1)
	logprobs := mlx.Subtract(logits, lse)
	y := smp.sample(logprobs)
	mlx.Detach(y)
	return y
}

// reshapeToken turns a sampled token (1,) into the next input (1, 1).
func reshapeToken(y *mlx.Array) *mlx.Array { return mlx.Reshape(y, 1, 1) }
