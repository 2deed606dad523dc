package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeRun lays out a run directory as the engine does: recipe, hash, metrics lines with
// the given losses, and result.json with exit unless exit < 0.
func writeRun(t *testing.T, parent, name string, exit int, losses ...float64) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "recipe.yaml"), []byte("version: 1\nname: x\nstages:\n  - {id: clear, kind: clear-cache, every: 2}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "recipe.sha256"), []byte(strings.Repeat(name[:1], 64)+"  recipe.yaml\n"), 0o644)
	var lines strings.Builder
	for i, l := range losses {
		fired := `["train"]`
		if (i+1)%2 == 0 {
			fired = `["train","clear"]`
		}
		fmt.Fprintf(&lines, `{"step":%d,"loss":%g,"tokens":10,"elapsed":%d,"mlx_active":1000,"mlx_peak":%d,"mlx_cache":10,"rss":5000,"limit":100000,"fired":%s}`+"\n",
			i+1, l, i+1, 2000000+i*1000000, fired)
	}
	os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(lines.String()), 0o644)
	if exit >= 0 {
		os.WriteFile(filepath.Join(dir, "result.json"), []byte(fmt.Sprintf(`{"exit_code": %d, "steps": %d, "reason": "", "error": ""}`, exit, len(losses))), 0o644)
	}
	return dir
}

// yai runs lists each status, newest first, with steps, final loss, peak and recipe hash.
func TestRunsCommand(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, "a-20260101T000001Z", 0, 3, 2.5)
	writeRun(t, dir, "b-20260101T000002Z", 3, 3, 2.9, 2.8)
	writeRun(t, dir, "c-20260101T000003Z", 4, 3)
	writeRun(t, dir, "d-20260101T000004Z", 130, 3, 2.7)
	writeRun(t, dir, "e-20260101T000005Z", 1)
	writeRun(t, dir, "f-20260101T000006Z", -1, 3, 2.2)
	os.MkdirAll(filepath.Join(dir, "not-a-run"), 0o755)
	var stdout, stderr strings.Builder
	if code := runsMain([]string{dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	want := []struct{ name, status, steps, loss, peak, hash string }{
		{"f-20260101T000006Z", "running or killed", "2", "2.2000", "3MB", "ffffffffffff"},
		{"e-20260101T000005Z", "failed", "0", "-", "-", "eeeeeeeeeeee"},
		{"d-20260101T000004Z", "interrupted", "2", "2.7000", "3MB", "dddddddddddd"},
		{"c-20260101T000003Z", "aborted by guard", "1", "3.0000", "2MB", "cccccccccccc"},
		{"b-20260101T000002Z", "stopped by guard", "3", "2.8000", "4MB", "bbbbbbbbbbbb"},
		{"a-20260101T000001Z", "done", "2", "2.5000", "3MB", "aaaaaaaaaaaa"},
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("yai runs printed:\n%s", stdout.String())
	}
	for i, w := range want {
		fields := strings.Split(lines[i+1], "  ")
		var got []string
		for _, f := range fields {
			if f = strings.TrimSpace(f); f != "" {
				got = append(got, f)
			}
		}
		if strings.Join(got, "|") != strings.Join([]string{w.name, w.status, w.steps, w.loss, w.peak, w.hash}, "|") {
			t.Errorf("line %d: %q, want %v", i+1, lines[i+1], w)
		}
	}
	// A run directory with a broken metrics line is reported by file and line.
	bad := writeRun(t, dir, "g-20260101T000007Z", 0, 3, 2)
	os.WriteFile(filepath.Join(bad, "metrics.jsonl"), []byte("{\"step\":1}\nnot json\n{\"step\":3}\n"), 0o644)
	stdout.Reset()
	stderr.Reset()
	if code := runsMain([]string{dir}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "metrics.jsonl:2") {
		t.Errorf("broken metrics: exit %d, %q", code, stderr.String())
	}
}

// yai report writes decodable PNGs of the chart size and prints summaries whose figures are
// those of the metrics lines; it refuses to overwrite its output.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	a := writeRun(t, dir, "a-20260101T000001Z", 0, 3, 2.5, 2.25, 2.0)
	b := writeRun(t, dir, "b-20260101T000002Z", 3, 3.5, 3.0)
	var stdout, stderr strings.Builder
	if code := reportMain([]string{"--json", a, b}, &stdout, &stderr, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := "report-20260102T030405Z"
	defer os.RemoveAll(out)
	var sums []struct {
		Run          string
		Status       string
		Steps        int64
		Tokens       int64
		TokensPerSec float64 `json:"tokens_per_s"`
		FinalLoss    float64 `json:"final_loss"`
		PeakMLX      int64   `json:"peak_mlx"`
		Events       map[string]int
	}
	if err := json.Unmarshal([]byte(stdout.String()), &sums); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if len(sums) != 2 || sums[0].Steps != 4 || sums[0].Tokens != 40 || sums[0].TokensPerSec != 10 || sums[0].FinalLoss != 2.0 ||
		sums[0].PeakMLX != 5000000 || sums[0].Events["clear-cache"] != 2 || sums[1].Status != "stopped by guard" {
		t.Errorf("summaries %+v", sums)
	}
	for _, name := range []string{"loss.png", "memory.png"} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 960 || cfg.Height != 576 {
			t.Errorf("%s: %dx%d, %v", name, cfg.Width, cfg.Height, err)
		}
	}
	stderr.Reset()
	if code := reportMain([]string{a}, &stdout, &stderr, time.Now()); code != 0 {
		t.Fatalf("single run: exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(a, "report", "memory.png")); err != nil {
		t.Errorf("single-run report not in RUN_DIR/report: %v", err)
	}
	stderr.Reset()
	if code := reportMain([]string{a}, &stdout, &stderr, time.Now()); code != 1 || !strings.Contains(stderr.String(), "already exists") {
		t.Errorf("second report: exit %d, %q", code, stderr.String())
	}
}

// yai runs and yai report read run directories the engine wrote before internal/rundir
// owned the format.
func TestRunsAndReportOfFixtureRuns(t *testing.T) {
	fixtures := filepath.Join("..", "..", "internal", "rundir", "testdata", "runs")
	var stdout, stderr strings.Builder
	if code := runsMain([]string{fixtures}, &stdout, &stderr); code != 0 {
		t.Fatalf("yai runs: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		"fixture-20260301T101500Z-3  stopped by guard  6",
		"fixture-20260301T101500Z-2  done              10",
		"fixture-20260301T101500Z    done              8",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("yai runs lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	out := filepath.Join(t.TempDir(), "report")
	if code := reportMain([]string{"--out", out, filepath.Join(fixtures, "fixture-20260301T101500Z")}, &stdout, &stderr, time.Now()); code != 0 {
		t.Fatalf("yai report: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "fixture-20260301T101500Z: done") {
		t.Errorf("yai report printed:\n%s", stdout.String())
	}
}
