// Package serve answers OpenAI's chat completions and completions API over one base model
// and any number of LoRA adapters, chosen per request by the request's model field.
//
// One generation runs at a time: MLX runs on one thread, and the adapters take turns in the
// one base model. Requests wait in a queue for it; a request whose client goes away leaves
// the queue, and one that is generating stops at the next token. Each adapter's arrays are
// loaded once, at start; choosing one for a request moves its layers into the model (lora's
// Plug) and the previous ones out (Unplug), which costs no MLX work and reads no file.
// Adapter paths come only from the server's configuration, never from a request.
//
// Ownership: the model and the adapters live until Close. Each generation's caches are
// freed when it ends (generate.Generate), however it ends, so memory returns to where it was.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/tokenizer"
)

// Adapter is an adapter the server offers under Name, read from Path (an adapter directory
// or a run directory).
type Adapter struct {
	Name, Path string
}

// Config says what to serve and how.
type Config struct {
	ModelDir string
	// ModelID is the base model's id in /v1/models and the model field; empty uses ModelDir.
	ModelID  string
	Adapters []Adapter
	// APIKey, when set, is the bearer token every /v1 request must carry.
	APIKey string
	// MaxBodyBytes bounds a request body; 0 is DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxTokens is the default max_tokens; 0 is DefaultMaxTokens.
	MaxTokens int
	// WriteTimeout bounds each write to a client (a chunk of a stream, a whole response): a
	// client that stops reading ends its generation. 0 is DefaultWriteTimeout.
	WriteTimeout time.Duration
	Log          *slog.Logger // nil discards
}

// Defaults of Config's zero fields.
const (
	DefaultMaxBodyBytes = 4 << 20
	DefaultMaxTokens    = 512
	DefaultWriteTimeout = 30 * time.Second
)

// Server holds the model, its adapters and the queue of generations.
type Server struct {
	cfg      Config
	model    *model.Model
	tok      *tokenizer.Tokenizer
	adapters map[string]*lora.Adapters
	ids      []string // served model ids: the base model, then the adapters in order
	created  int64
	log      *slog.Logger

	// turn is held by the one generation running; requests queue on it.
	turn    chan struct{}
	plugged *lora.Adapters // the adapters in the model now, nil for none
	closed  bool

	// finished, when set (by tests), hears how each generation that got its turn ended.
	finished func(outcome, error)
}

// New loads the model and every adapter.
func New(cfg Config) (*Server, error) {
	if cfg.ModelID == "" {
		cfg.ModelID = cfg.ModelDir
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = DefaultMaxTokens
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ids := []string{cfg.ModelID}
	for _, a := range cfg.Adapters {
		switch {
		case a.Name == "":
			return nil, fmt.Errorf("serve: adapter %s has no name", a.Path)
		case slices.Contains(ids, a.Name):
			return nil, fmt.Errorf("serve: two models are named %q", a.Name)
		}
		ids = append(ids, a.Name)
	}
	tok, err := tokenizer.Load(cfg.ModelDir)
	if err != nil {
		return nil, err
	}
	m, err := model.Load(cfg.ModelDir, model.LoadOptions{})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, model: m, tok: tok, adapters: map[string]*lora.Adapters{}, ids: ids,
		created: time.Now().Unix(), log: log, turn: make(chan struct{}, 1)}
	for _, a := range cfg.Adapters {
		dir, err := generate.AdapterDir(a.Path)
		if err == nil {
			var ad *lora.Adapters
			if ad, err = lora.Load(m.Layers, dir); err == nil {
				ad.Unplug() // the next adapter wraps the base layers, not these
				s.adapters[a.Name] = ad
				continue
			}
		}
		s.free()
		return nil, fmt.Errorf("serve: adapter %s: %w", a.Name, err)
	}
	return s, nil
}

// Models are the served model ids: the base model first, then the adapters.
func (s *Server) Models() []string { return slices.Clone(s.ids) }

// Close waits for the running generation, if any, and frees the model and the adapters.
// Requests after Close fail.
func (s *Server) Close() {
	s.turn <- struct{}{}
	defer func() { <-s.turn }()
	if !s.closed {
		s.closed = true
		s.free()
	}
}

func (s *Server) free() {
	for _, a := range s.adapters {
		a.Detach()
	}
	s.model.Free()
}

// job is one generation.
type job struct {
	adapter *lora.Adapters // nil: the base model
	prompt  []int32
	opts    generate.Options
	stops   []string
}

// outcome is how a generation ended.
type outcome struct {
	finish           string // "stop" or "length"
	promptTokens     int
	completionTokens int
}

// errStopString ends a generation at a stop string.
var errStopString = errors.New("stop string")

// errClosed answers requests that come after Close.
var errClosed = errors.New("the server is shutting down")

// run waits for its turn (or for ctx to end), then generates, handing out each piece of
// text as it becomes final; stop strings are cut out. It checks ctx before each token. The
// caches are freed when it returns.
func (s *Server) run(ctx context.Context, j job, out func(text string) error) (o outcome, err error) {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return outcome{}, ctx.Err()
	}
	defer func() { <-s.turn }()
	if s.finished != nil {
		defer func() { s.finished(o, err) }()
	}
	if s.closed {
		return outcome{}, errClosed
	}
	if err := ctx.Err(); err != nil {
		return outcome{}, err
	}
	if s.plugged != j.adapter {
		if s.plugged != nil {
			s.plugged.Unplug()
			s.plugged = nil
		}
		if j.adapter != nil {
			if err := j.adapter.Plug(); err != nil {
				return outcome{}, err
			}
			s.plugged = j.adapter
		}
	}
	stream := generate.NewTextStream(s.tok)
	cut := newStopCutter(j.stops)
	st, err := generate.Generate(s.model, j.prompt, j.opts, func(tok int32) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		text, stopped := cut.add(stream.Add(tok))
		if text != "" {
			if err := out(text); err != nil {
				return err
			}
		}
		if stopped {
			return errStopString
		}
		return nil
	})
	o = outcome{finish: st.FinishReason, promptTokens: len(j.prompt), completionTokens: st.GenerationTokens}
	if err == nil && st.FinishReason == "stop" {
		// The end-of-sequence token was generated too, and counts (as mlx_lm.server counts it).
		o.completionTokens++
	}
	switch {
	case errors.Is(err, errStopString):
		return outcome{finish: "stop", promptTokens: o.promptTokens, completionTokens: o.completionTokens}, nil
	case err != nil:
		return o, err
	}
	// What the text stream and the cutter still hold is final now.
	text, stopped := cut.add(stream.Flush())
	if !stopped {
		text += cut.flush()
	} else {
		o.finish = "stop"
	}
	if text != "" {
		if err := out(text); err != nil {
			return o, err
		}
	}
	return o, nil
}

// stopCutter finds stop strings in text that comes in pieces. It holds back the end of the
// text that could begin a stop string, so what it hands out never contains one.
type stopCutter struct {
	stops []string
	held  string
}

func newStopCutter(stops []string) *stopCutter { return &stopCutter{stops: stops} }

// add takes the next piece and returns the text that is final, and whether a stop string
// ended the text (the stop string and anything after it are dropped).
func (c *stopCutter) add(piece string) (string, bool) {
	if len(c.stops) == 0 {
		return piece, false
	}
	text := c.held + piece
	first := -1
	for _, s := range c.stops {
		if i := strings.Index(text, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		c.held = ""
		return text[:first], true
	}
	keep := 0
	for _, s := range c.stops {
		for n := min(len(s)-1, len(text)); n > keep; n-- {
			if strings.HasSuffix(text, s[:n]) {
				keep = n
				break
			}
		}
	}
	c.held = text[len(text)-keep:]
	return text[:len(text)-keep], false
}

// flush returns the text held back.
func (c *stopCutter) flush() string {
	t := c.held
	c.held = ""
	return t
}
