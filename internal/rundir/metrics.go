package rundir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/sourcegraph/conc"
)

// Metrics is one line of metrics.jsonl: everything known about one step.
type Metrics struct {
	Step      int64    `json:"step"`
	Loss      Loss     `json:"loss"`
	ValLoss   *float64 `json:"val_loss,omitempty"`
	Tokens    int64    `json:"tokens"`
	TokPerSec float64  `json:"tok_s"`
	LR        float64  `json:"lr"`
	Elapsed   float64  `json:"elapsed"`
	MLXActive int64    `json:"mlx_active"`
	MLXPeak   int64    `json:"mlx_peak"`
	MLXCache  int64    `json:"mlx_cache"`
	MLXArrays int64    `json:"mlx_arrays"`
	// MLXPeak is the peak within the step; MLXPeakRun the run's so far.
	MLXPeakRun int64 `json:"mlx_peak_run"`
	// RSS and Swap are absent where the platform cannot give them.
	RSS  *int64 `json:"rss,omitempty"`
	Swap *int64 `json:"swap,omitempty"`
	// The step's schedule and the compiled traces kept so far.
	MicroBatches  int64          `json:"micro_batches"`
	Checkpointing bool           `json:"checkpointing"`
	Traces        int64          `json:"traces"`
	Limit         int64          `json:"limit"`
	Growth        float64        `json:"growth"`
	Fired         []string       `json:"fired"`
	Notes         map[string]any `json:"notes,omitempty"`
	// Skipped: this step's loss or gradient was not finite and the batch was skipped.
	Skipped      bool  `json:"skipped,omitempty"`
	SkippedTotal int64 `json:"skipped_total,omitempty"`
	// Ranks are every rank's memory at the step's end, in a distributed run.
	Ranks []RankMemory `json:"ranks,omitempty"`
}

// RankMemory is one rank's memory in metrics.jsonl.
type RankMemory struct {
	Rank      int   `json:"rank"`
	MLXActive int64 `json:"mlx_active"`
	MLXPeak   int64 `json:"mlx_peak"`
	MLXCache  int64 `json:"mlx_cache"`
	RSS       int64 `json:"rss"`
}

// MetricsWriter appends lines to metrics.jsonl on its own goroutine, so the training thread
// never waits on the disk.
type MetricsWriter struct {
	ch  chan metricsItem
	wg  conc.WaitGroup
	err error
}

// metricsItem is a line to write, or a request to sync what was written (synced closes).
type metricsItem struct {
	line   Metrics
	synced chan error
}

// CreateMetrics creates rank's metrics file in dir. It must not exist: the run directory is
// new, and metrics are never appended to an old run.
func CreateMetrics(dir string, rank int) (*MetricsWriter, error) {
	f, err := os.OpenFile(filepath.Join(dir, RankFile(rank, MetricsFile)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	w := &MetricsWriter{ch: make(chan metricsItem, 256)}
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

// Write queues a line. Lines go out in order; an error is kept and returned by Sync and Close.
func (w *MetricsWriter) Write(m Metrics) { w.ch <- metricsItem{line: m} }

// Sync waits until every line written so far is on the disk: a checkpoint of step N is
// only written once metrics.jsonl holds step N.
func (w *MetricsWriter) Sync() error {
	done := make(chan error, 1)
	w.ch <- metricsItem{synced: done}
	return <-done
}

// Close waits for every line to reach the disk and closes the file.
func (w *MetricsWriter) Close() error {
	close(w.ch)
	w.wg.Wait()
	return w.err
}

// ReadMetrics reads rank's metrics file in dir. A last line without its newline is a line
// the writer was cut off in (a killed run): it is dropped, not an error, and torn says so.
// Any other bad line is an error naming the file and line.
func ReadMetrics(dir string, rank int) (ms []Metrics, torn bool, err error) {
	path := filepath.Join(dir, RankFile(rank, MetricsFile))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	var out []Metrics
	for n, line := 1, data; len(line) > 0; n++ {
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			return out, true, nil // torn last line
		}
		if len(bytes.TrimSpace(line[:i])) > 0 {
			var m Metrics
			if err := json.Unmarshal(line[:i], &m); err != nil {
				return out, false, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			out = append(out, m)
		}
		line = line[i+1:]
	}
	return out, false, nil
}

// OverLimit reports whether the step's MLX peak passed the run's memory limit, and by how
// much; a run without a limit never does.
func (m Metrics) OverLimit() (OverLimitStep, bool) {
	return OverLimitStep{Step: m.Step, MLXPeak: m.MLXPeak, Limit: m.Limit}, m.Limit > 0 && m.MLXPeak > m.Limit
}

// RSSBytes is the line's RSS, 0 where the platform gave none.
func (m Metrics) RSSBytes() int64 {
	if m.RSS == nil {
		return 0
	}
	return *m.RSS
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
