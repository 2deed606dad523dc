package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A run being written (or killed mid-write) reads: the torn last line is dropped, a missing
// result.json means running or killed; a bad line before the end is an error naming it.
func TestReadTolerance(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r-20260301T101500Z-2")
	os.Mkdir(dir, 0o755)
	write(t, dir, RecipeFile, "version: 1\nname: r\nstages:\n  - {id: g, kind: guard}\n  - {id: c, kind: clear-cache}\n")
	write(t, dir, MetricsFile, "{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":1.5}\n{\"step\":3,\"lo")
	r, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 2 || !r.Torn || r.Status() != "running or killed" || r.RecipeHash != "" {
		t.Errorf("%+v, status %q", r, r.Status())
	}
	if r.Recipe.GuardBuffer == nil || *r.Recipe.GuardBuffer != 0.2 || r.Recipe.Kinds["c"] != "clear-cache" {
		t.Errorf("recipe %+v", r.Recipe)
	}
	if want := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC); !r.Started.Equal(want) {
		t.Errorf("started %v, want %v", r.Started, want)
	}
	write(t, dir, MetricsFile, "{\"step\":1}\n{\"step\":2,\n{\"step\":3}\n")
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), MetricsFile+":2") {
		t.Errorf("bad middle line: %v", err)
	}
	write(t, dir, MetricsFile, "")
	write(t, dir, ResultFile, "{\"exit_code\": 130")
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), ResultFile) {
		t.Errorf("bad result.json: %v", err)
	}
	write(t, dir, ResultFile, "{\"exit_code\": 130, \"steps\": 0}")
	if r, err := Read(dir); err != nil || r.Status() != "interrupted" || len(r.Steps) != 0 {
		t.Errorf("interrupted before a step: %+v, %v", r, err)
	}
	if _, err := Read(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a run directory") {
		t.Errorf("plain directory: %v", err)
	}
}
