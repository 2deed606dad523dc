package rundir

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// write puts body in dir/name, as a test sets up a run directory.
func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A killed writer can leave a torn last line; readers drop it and say so. A torn line
// elsewhere is an error naming the file and line.
func TestReadMetricsTornLine(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, MetricsFile, "{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":1}\n{\"step\":3,\"lo")
	ms, torn, err := ReadMetrics(dir, 0)
	if err != nil || !torn || len(ms) != 2 || ms[1].Loss != 1 {
		t.Errorf("got %+v, torn %v, %v", ms, torn, err)
	}
	write(t, dir, MetricsFile, "{\"step\":1,\"loss\":2}\n{\"step\":2,\"lo\n{\"step\":3}\n")
	if _, _, err := ReadMetrics(dir, 0); err == nil || !strings.Contains(err.Error(), "metrics.jsonl:2:") {
		t.Errorf("torn middle line: %v", err)
	}
	if _, _, err := ReadMetrics(dir, 2); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rank 2's metrics: %v, want not found", err)
	}
}

// What the writer writes reads back the same, a non-finite loss as NaN; a run's metrics
// file is never written twice.
func TestMetricsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rss, val := int64(5e8), 1.25
	want := []Metrics{
		{Step: 1, Loss: 2.5, Tokens: 100, TokPerSec: 50, LR: 1e-4, MLXActive: 1, MLXPeak: 2, MLXCache: 3, MLXArrays: 4,
			MLXPeakRun: 5, RSS: &rss, MicroBatches: 2, Checkpointing: true, Traces: 1, Limit: 1e9, Growth: 0.5,
			Fired: []string{"train"}, Notes: map[string]any{"guard": "crossed"}, ValLoss: &val,
			Ranks: []RankMemory{{Rank: 0, MLXActive: 1}, {Rank: 1, MLXActive: 2, RSS: 7}}},
		{Step: 2, Loss: Loss(math.NaN()), Fired: []string{}, Skipped: true, SkippedTotal: 1},
	}
	for _, rank := range []int{0, 3} {
		w, err := CreateMetrics(dir, rank)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(want[0])
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if ms, _, _ := ReadMetrics(dir, rank); len(ms) != 1 {
			t.Errorf("rank %d: %d lines on the disk after Sync, want 1", rank, len(ms))
		}
		w.Write(want[1])
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, torn, err := ReadMetrics(dir, rank)
		if err != nil || torn {
			t.Fatalf("rank %d: %v, torn %v", rank, err, torn)
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(sameLoss)); diff != "" {
			t.Errorf("rank %d (-want +got):\n%s", rank, diff)
		}
		if _, err := CreateMetrics(dir, rank); !errors.Is(err, fs.ErrExist) {
			t.Errorf("rank %d: a second metrics writer: %v, want ErrExist", rank, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rank-3.metrics.jsonl")); err != nil {
		t.Errorf("rank 3's file: %v", err)
	}
}

func sameLoss(a, b Loss) bool { return a == b || (math.IsNaN(float64(a)) && math.IsNaN(float64(b))) }
