package runtime

import (
	"bufio"
	"encoding/json"
	"os"

	"github.com/sourcegraph/conc"
)

// Metrics is one line of metrics.jsonl: everything known about one step.
type Metrics struct {
	Step      int64          `json:"step"`
	Loss      float64        `json:"loss"`
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
}

// metricsWriter appends lines to metrics.jsonl on its own goroutine, so the training thread
// never waits on the disk.
type metricsWriter struct {
	ch  chan Metrics
	wg  conc.WaitGroup
	err error
}

func newMetricsWriter(path string) (*metricsWriter, error) {
	// O_EXCL: the run directory is new, and metrics are never appended to an old run.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	w := &metricsWriter{ch: make(chan Metrics, 256)}
	w.wg.Go(func() {
		buf := bufio.NewWriter(f)
		enc := json.NewEncoder(buf)
		for m := range w.ch {
			if w.err == nil {
				w.err = enc.Encode(m)
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

func (w *metricsWriter) write(m Metrics) { w.ch <- m }

// close waits for every line to reach the disk.
func (w *metricsWriter) close() error {
	close(w.ch)
	w.wg.Wait()
	return w.err
}
