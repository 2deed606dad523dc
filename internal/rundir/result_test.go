package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// result.json reads back as written, for every field either side uses; a rank's result is
// its own file; a missing one reads as nil.
func TestResultRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := Result{ExitCode: 3, Steps: 12, Reason: "memory guard", Error: "stage failed", Skipped: 2,
		OverLimit: 2, Worst: &OverLimitStep{Step: 7, MLXPeak: 7_480_000_000, Limit: 7_000_000_000},
		Parent: "/runs/a", ResumedFrom: "/runs/a/checkpoints/step-00000008"}
	for _, rank := range []int{0, 2} {
		if got, err := ReadResult(dir, rank); got != nil || err != nil {
			t.Errorf("rank %d before writing: %+v, %v", rank, got, err)
		}
		if err := WriteResult(dir, rank, want); err != nil {
			t.Fatal(err)
		}
		got, err := ReadResult(dir, rank)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("rank %d (-want +got):\n%s", rank, diff)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rank-2.result.json")); err != nil {
		t.Error(err)
	}
	// a fresh run's result leaves the resume and over-limit fields out, as it always did
	if err := WriteResult(dir, 0, Result{Steps: 1}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, ResultFile))
	const fresh = "{\n  \"exit_code\": 0,\n  \"steps\": 1,\n  \"reason\": \"\",\n  \"error\": \"\",\n  \"skipped_nonfinite\": 0\n}\n"
	if string(data) != fresh {
		t.Errorf("result.json:\n%s\nwant\n%s", data, fresh)
	}
	write(t, dir, ResultFile, `{"exit_code": 1`)
	if _, err := ReadResult(dir, 0); err == nil || !strings.Contains(err.Error(), ResultFile) {
		t.Errorf("torn result.json: %v", err)
	}
}
