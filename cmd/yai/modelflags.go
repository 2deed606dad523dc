package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"

	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/modeldir"
)

// modelFlags are the --model and --adapter flags of the commands that use a trained model
// (generate, chat, eval, fuse).
type modelFlags struct {
	model, adapter string
}

func (m *modelFlags) register(fs *flag.FlagSet, adapterRequired bool) {
	fs.StringVar(&m.model, "model", "", "model: a directory, a Hugging Face repo id in the local cache, or an alias (required)")
	doc := "adapters: an adapter directory or a run directory (optional)"
	if adapterRequired {
		doc = "adapters: an adapter directory or a run directory (required)"
	}
	fs.StringVar(&m.adapter, "adapter", "", doc)
}

// resolve finds the model directory the way recipes do (relative paths from the working
// directory).
func (m *modelFlags) resolve() (string, error) {
	if m.model == "" {
		return "", errors.New("--model is required")
	}
	dir, err := modeldir.Resolve(m.model, ".")
	var nf *modeldir.NotFound
	if errors.As(err, &nf) {
		return "", fmt.Errorf("%s\n%s", nf.Error(), nf.Help())
	}
	return dir, err
}

// load resolves and loads the model with its adapters, reporting errors on stderr.
func (m *modelFlags) load(name string, stderr io.Writer) (*generate.Loaded, bool) {
	dir, err := m.resolve()
	if err == nil {
		var l *generate.Loaded
		if l, err = generate.Load(dir, m.adapter); err == nil {
			return l, true
		}
	}
	fmt.Fprintf(stderr, "yai %s: %v\n", name, err)
	return nil, false
}

// samplingFlags are the decoding flags of generate and chat.
type samplingFlags struct {
	maxTokens int
	sampling  generate.Sampling
}

func (s *samplingFlags) register(fs *flag.FlagSet, defaultMax int) {
	fs.IntVar(&s.maxTokens, "max-tokens", defaultMax, "stop after this many tokens")
	fs.Float64Var(&s.sampling.Temp, "temp", 0, "sampling temperature; 0 is greedy")
	fs.Float64Var(&s.sampling.TopP, "top-p", 0, "nucleus sampling: keep the likeliest tokens up to this probability mass (needs --temp)")
	fs.IntVar(&s.sampling.TopK, "top-k", 0, "keep only the k likeliest tokens (needs --temp)")
	fs.Float64Var(&s.sampling.MinP, "min-p", 0, "drop tokens below this fraction of the top token's probability (needs --temp)")
	fs.Uint64Var(&s.sampling.Seed, "seed", 0, "random seed for sampling")
}

// check range-checks the flags before the model loads (top-k against the vocabulary waits
// for it).
func (s *samplingFlags) check() error {
	return firstError(
		inRange("max-tokens", s.maxTokens, 1, 1<<30),
		inRange("temp", s.sampling.Temp, 0, math.MaxFloat64),
		inRange("top-p", s.sampling.TopP, 0, 1),
		inRange("top-k", s.sampling.TopK, 0, math.MaxInt32),
		inRange("min-p", s.sampling.MinP, 0, 1),
	)
}

func (s *samplingFlags) options(l *generate.Loaded) (generate.Options, error) {
	if s.maxTokens <= 0 {
		return generate.Options{}, fmt.Errorf("--max-tokens must be positive, got %d", s.maxTokens)
	}
	if err := s.sampling.Check(l.Model.Config.VocabSize); err != nil {
		return generate.Options{}, err
	}
	return generate.Options{MaxTokens: s.maxTokens, Sampling: s.sampling, Stop: l.Tokenizer.EOS()}, nil
}

// printStats writes the figures mlx_lm prints after a generation.
func printStats(w io.Writer, st generate.Stats) {
	fmt.Fprintf(w, "prompt: %d tokens, %.1f tokens/s\n", st.PromptTokens, st.PromptTPS)
	fmt.Fprintf(w, "generation: %d tokens, %.1f tokens/s (%s)\n", st.GenerationTokens, st.GenerationTPS, st.FinishReason)
	fmt.Fprintf(w, "peak memory: %.3f GB\n", float64(st.PeakMemory)/1e9)
}

// usageErrorTo is usageError writing to the command's own stderr.
func usageErrorTo(w io.Writer, fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(w, "yai %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(w, "Run 'yai %s --help' for usage.\n", fs.Name())
	return 2
}
