package report

import (
	"bufio"
	"encoding/json"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/internal/rundir"
)

// independent recomputes the summary figures straight from metrics.jsonl with a plain JSON
// decode, sharing no code with Summarize.
type independent struct {
	steps, tokens           int64
	elapsed, loss, valLoss  float64
	peak, active, rss       int64
	clears, reloads, guards int
	checkpoints             int
	over                    int   // steps whose peak passed the limit
	worstStep, worstOver    int64 // the first of those furthest over
}

func recompute(t *testing.T, dir string) independent {
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var in independent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue // the torn line
		}
		in.steps = int64(m["step"].(float64))
		in.tokens += int64(m["tokens"].(float64))
		in.elapsed = m["elapsed"].(float64)
		in.loss = m["loss"].(float64)
		if v, ok := m["val_loss"]; ok {
			in.valLoss = v.(float64)
		}
		in.peak = max(in.peak, int64(m["mlx_peak"].(float64)))
		in.active = max(in.active, int64(m["mlx_active"].(float64)))
		in.rss = max(in.rss, int64(m["rss"].(float64)))
		for _, id := range m["fired"].([]any) {
			switch id {
			case "clear":
				in.clears++
			case "reload":
				in.reloads++
			case "ckpt":
				in.checkpoints++
			}
		}
		if notes, ok := m["notes"].(map[string]any); ok && notes["guard"] != nil {
			in.guards++
		}
		if by := int64(m["mlx_peak"].(float64)) - int64(m["limit"].(float64)); by > 0 {
			in.over++
			if by > in.worstOver {
				in.worstStep, in.worstOver = in.steps, by
			}
		}
	}
	return in
}

func TestSummaryEqualsMetrics(t *testing.T) {
	dir := fakeRun(t, t.TempDir(), "fake-20260101T000000Z", 3, true, 1)
	r, err := rundir.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(r)
	in := recompute(t, dir)
	if s.Steps != in.steps || s.Tokens != in.tokens || s.Elapsed != in.elapsed ||
		*s.FinalLoss != in.loss || *s.FinalValLoss != in.valLoss ||
		s.PeakMLX != in.peak || s.PeakActive != in.active || s.PeakRSS != in.rss {
		t.Errorf("summary %+v\nfrom the file %+v", s, in)
	}
	if math.Abs(s.TokensPerSec-float64(in.tokens)/in.elapsed) > 1e-9 {
		t.Errorf("tokens/s %v, want %v", s.TokensPerSec, float64(in.tokens)/in.elapsed)
	}
	want := map[string]int{ClearCache: in.clears, Reload: in.reloads, Guard: in.guards, Checkpoint: in.checkpoints, OverLimit: in.over}
	for k, n := range want {
		if s.Events[k] != n || n == 0 {
			t.Errorf("%s: %d events, the file has %d", k, s.Events[k], n)
		}
	}
	if !slices.Equal(s.EventSteps[Guard], []int64{33, 34}) || s.Status != "stopped by guard" || !r.Torn {
		t.Errorf("guard steps %v, status %q, torn %v", s.EventSteps[Guard], s.Status, r.Torn)
	}
	if s.OverLimit != int64(in.over) || s.Worst == nil || s.Worst.Step != in.worstStep || s.Worst.Over() != in.worstOver {
		t.Errorf("%d steps over the limit, worst %+v; the file has %d, worst step %d by %d", s.OverLimit, s.Worst, in.over, in.worstStep, in.worstOver)
	}
	text := s.Text()
	for _, want := range []string{"steps 40", "tokens 4820", "final loss 1.0000", "final val_loss 1.6000", "clear-cache ×4", "guard ×2 (steps 33 34)", "RSS 1.18GB",
		"over-limit ×17 (steps 4 5 6 11 12 13 … 11 more)", "steps over the limit: 17 (worst: step 6, MLX peak 1.08GB, 80MB over 1GB)"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary text lacks %q:\n%s", want, text)
		}
	}
}

// The report directory holds two PNGs that decode at the chart size and the summary; a
// second report into the same place is refused.
func TestWriteCharts(t *testing.T) {
	parent := t.TempDir()
	a := fakeRun(t, parent, "a-20260101T000000Z", 0, false, 1)
	b := fakeRun(t, parent, "b-20260102T000000Z", -1, true, 1.3)
	var runs []*rundir.Run
	for _, d := range []string{a, b} {
		r, err := rundir.Read(d)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	out := filepath.Join(t.TempDir(), "report")
	sums, err := Write(out, runs)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || sums[1].Status != "running or killed" {
		t.Errorf("summaries %+v", sums)
	}
	for _, name := range []string{LossChart, MemoryChart} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() != 960 || b.Dy() != 576 {
			t.Errorf("%s is %v, want 960×576", name, b)
		}
	}
	text, _ := os.ReadFile(filepath.Join(out, SummaryFile))
	if !strings.Contains(string(text), "a-20260101T000000Z: done") || !strings.Contains(string(text), "b-20260102T000000Z: running or killed") {
		t.Errorf("summary.txt:\n%s", text)
	}
	if _, err := Write(out, runs); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second report into %s: %v", out, err)
	}
}

// Run directories the engine wrote before internal/rundir owned the format still make a
// report (the fixtures live with the format's owner).
func TestReportOfFixtureRuns(t *testing.T) {
	var runs []*rundir.Run
	for _, name := range []string{"fixture-20260301T101500Z", "fixture-20260301T101500Z-2", "fixture-20260301T101500Z-3"} {
		r, err := rundir.Read(filepath.Join("..", "rundir", "testdata", "runs", name))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	sums, err := Write(filepath.Join(t.TempDir(), "report"), runs)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Status string
		Steps  int64
		Clears []int64
	}
	var got []row
	for _, s := range sums {
		got = append(got, row{s.Status, s.Steps, s.EventSteps[ClearCache]})
	}
	want := []row{{"done", 8, []int64{3, 6}}, {"done", 10, []int64{9}}, {"stopped by guard", 6, []int64{3, 6}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A step whose MLX peak passed the limit is an over-limit event: a marker on the memory chart
// (at the peak, in its own colour) and a line of the summary; a run whose peaks stay under
// the limit has neither marker nor event, and its summary says none passed it.
func TestOverLimitEvents(t *testing.T) {
	parent := t.TempDir()
	over, err := rundir.Read(fakeRun(t, parent, "over-20260101T000000Z", 0, false, 1))
	if err != nil {
		t.Fatal(err)
	}
	under, err := rundir.Read(fakeRun(t, parent, "under-20260101T000000Z", 0, false, 0.9)) // peaks at most 972 MB
	if err != nil {
		t.Fatal(err)
	}
	var at []int64
	for _, e := range Events(over) {
		if e.Kind == OverLimit {
			at = append(at, e.Step, e.At)
		}
	}
	if len(at) != 2*17 || at[0] != 4 || at[1] != 1020e6 || at[4] != 6 || at[5] != 1080e6 {
		t.Errorf("over-limit events (step, marker height): %v; want 17 from step 4 at its peak 1.02 GB", at)
	}
	if n := Summarize(under).Events[OverLimit]; n != 0 {
		t.Errorf("%d over-limit events in a run under its limit", n)
	}
	if text := Summarize(under).Text(); !strings.Contains(text, "steps over the limit: none (every MLX peak at most 1GB)") {
		t.Errorf("summary of a run under its limit:\n%s", text)
	}
	if text := Summarize(&rundir.Run{Name: "nolimit", Steps: []rundir.Metrics{{Step: 1, MLXPeak: 5e9}}}).Text(); !strings.Contains(text, "steps over the limit: no limit was set") {
		t.Errorf("summary of a run without a limit:\n%s", text)
	}
	if n, m := markerPixels(t, over), markerPixels(t, under); n == 0 || m != 0 {
		t.Errorf("memory chart: %d pixels of the over-limit marker colour with steps over the limit, %d without; want some, then none", n, m)
	}
}

// markerPixels draws r's memory chart and counts the pixels in the over-limit marker's colour.
func markerPixels(t *testing.T, r *rundir.Run) int {
	t.Helper()
	p, err := memoryPlot([]*rundir.Run{r})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), MemoryChart)
	if err := save(p, path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := color.RGBAModel.Convert(eventColors[OverLimit])
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == want {
				n++
			}
		}
	}
	return n
}
