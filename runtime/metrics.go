package runtime

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/sourcegraph/conc"
)

// Metrics is one line of metrics.jsonl: everything known about one step.
type Metrics struct {
	Step      int64          `json:"step"`
	Loss      Loss           `json:"loss"`
	ValLoss   *float64       `json:"val_loss,omitempty"`
	Tokens    int64          `json:"tokens"`
	TokPerSec float64        `json:"tok_s"`
	LR        float64        `json:"lr"`
	Elapsed   float64        `json:"elapsed"`
	MLXActive int64          `json:"mlx_active"`
	MLXPeak   int64          `json:"mlx_peak"`
	MLXCache  int64          `json:"mlx_cache"`
	MLXArrays int64          `json:"mlx_arrays"`
	RSS       int64          `json:"rss"`
	Limit     int64          `json:"limit"`
	Growth    float64        `json:"growth"`
	Fired     []string       `json:"fired"`
	Notes     map[string]any `json:"notes,omitempty"`
	// Skipped: this step's loss or gradient was not finite and the batch was skipped.
	Skipped      bool  `json:"skipped,omitempty"`
	SkippedTotal int64 `json:"skipped_total,omitempty"`
	Traces       int64 `json:"traces,omitempty"`
}

// metricsWriter appends lines to metrics.jsonl on its own goroutine, so the training thread
// never waits on the disk.
type metricsWriter struct {
	ch  chan metricsItem
	wg  conc.WaitGroup
	err error
}

// metricsItem is a line to write, or a request to sync what was written (synced closes).
type metricsItem struct {
	line   Metrics
	synced chan error
}

func newMetricsWriter(path string) (*metricsWriter, error) {
	// O_EXCL: the run directory is new, and metrics are never appended to an old run.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	w := &metricsWriter{ch: make(chan metricsItem, 256)}
	w.wg.Go(func() {
		buf := bufio.NewWriter(f)
		enc := json.NewEncoder(buf)
		for m := range w.ch {
			if m.synced != nil {
				if w.err == nil {
					w.err = buf.Flush()
				}
				if w.err == nil {
					w.err = f.Sync()
				}
				m.synced <- w.err
				continue
			}
			if w.err == nil {
				w.err = enc.Encode(m.line)
			}
			if len(w.ch) == 0 && w.err == nil {
				w.err = buf.Flush() // keep the file current for `tail -f`
			}
		}
		if err := buf.Flush(); w.err == nil {
			w.err = err
		}
		if err := f.Sync(); w.err == nil {
			w.err = err
		}
		if err := f.Close(); w.err == nil {
			w.err = err
		}
	})
	return w, nil
}

func (w *metricsWriter) write(m Metrics) { w.ch <- metricsItem{line: m} }

// flush waits until every line written so far is on the disk: a checkpoint of step N is
// only written once metrics.jsonl holds step N.
func (w *metricsWriter) flush() error {
	done := make(chan error, 1)
	w.ch <- metricsItem{synced: done}
	return <-done
}

// close waits for every line to reach the disk.
func (w *metricsWriter) close() error {
	close(w.ch)
	w.wg.Wait()
	return w.err
}

// ReadMetrics reads a metrics.jsonl. A last line without its newline is a line the writer
// was cut off in (a killed run): it is dropped, not an error. Any other bad line is.
func ReadMetrics(path string) ([]Metrics, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Metrics
	for n, line := 1, data; len(line) > 0; n++ {
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			break // torn last line
		}
		var m Metrics
		if err := json.Unmarshal(line[:i], &m); err != nil {
			return out, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, m)
		line = line[i+1:]
	}
	return out, nil
}

// Loss is a step's loss; a non-finite one (a step that was not applied) is written as null,
// which JSON can hold, and read back as NaN.
type Loss float64

func (l Loss) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(l))
}

func (l *Loss) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*l = Loss(math.NaN())
		return nil
	}
	return json.Unmarshal(b, (*float64)(l))
}
