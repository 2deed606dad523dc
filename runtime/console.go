package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// Console is the terminal: log lines scroll above one live progress line. Writes of log lines
// clear the progress line first and redraw it after, so the two never interleave.
type Console struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	line string
}

// NewConsole wraps w; the progress line is drawn only when tty is true.
func NewConsole(w io.Writer, tty bool) *Console { return &Console{w: w, tty: tty} }

func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.line != "" {
		io.WriteString(c.w, "\r\033[K")
	}
	n, err := c.w.Write(p)
	if c.line != "" {
		io.WriteString(c.w, c.line)
	}
	return n, err
}

// Progress replaces the progress line.
func (c *Console) Progress(s string) {
	if !c.tty {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	io.WriteString(c.w, "\r\033[K"+s)
	c.line = s
}

// EndProgress leaves the last progress line on screen and moves below it.
func (c *Console) EndProgress() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.line != "" {
		io.WriteString(c.w, "\n")
		c.line = ""
	}
}

// progressLine renders: step 12/1000  loss 2.314  812 tok/s  active 3.2GB  cache 120MB  ETA 4m12s
func progressLine(env stage.Figures, tokPerSec float64) string {
	eta := "?"
	if env.Step > 0 {
		per := env.Elapsed / float64(env.Step)
		eta = (time.Duration(per*float64(env.Steps-env.Step)) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("step %d/%d  loss %.3f  %.0f tok/s  active %s  cache %s  ETA %s",
		env.Step, env.Steps, env.Loss, tokPerSec, stages.Bytes(env.MLX.Active), stages.Bytes(env.MLX.Cache), eta)
}

// NewLogger builds the run's logger: text (or JSON) to the console, and always text to the run's
// log file when one is given.
func NewLogger(console io.Writer, jsonOut bool, level slog.Level, file io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if jsonOut {
		h = slog.NewJSONHandler(console, opts)
	} else {
		h = slog.NewTextHandler(console, opts)
	}
	if file != nil {
		h = teeHandler{h, slog.NewJSONHandler(file, &slog.HandlerOptions{Level: slog.LevelDebug})}
	}
	return slog.New(h)
}

// teeHandler sends each record to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.a.Enabled(ctx, r.Level) {
		err = t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		if e := t.b.Handle(ctx, r); err == nil {
			err = e
		}
	}
	return err
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t.a.WithGroup(name), t.b.WithGroup(name)}
}
