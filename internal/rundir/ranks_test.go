package rundir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ranks.json reads back as written.
func TestRanksRoundTrip(t *testing.T) {
	dir := t.TempDir()
	exits := []RankExit{{Rank: 0, Host: "127.0.0.1", ExitCode: 0}, {Rank: 1, Host: "b", ExitCode: -1, Signal: "killed", Killed: true}}
	if err := WriteRanks(dir, exits); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRanks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(exits, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The record of a rank failure keeps the engine's own error in front.
func TestRecordRankFailure(t *testing.T) {
	dir := t.TempDir()
	if err := WriteResult(dir, 1, Result{ExitCode: 5, Steps: 3, Error: "stage failed"}); err != nil {
		t.Fatal(err)
	}
	if code := RecordRankFailure(dir, 1, errors.New("peer 0 lost")); code != 5 {
		t.Fatalf("code %d", code)
	}
	res, _ := ReadResult(dir, 1)
	want := &Result{ExitCode: 5, Steps: 3, Error: "stage failed; distributed run: peer 0 lost", Reason: "peer 0 lost"}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "rank-1.log")); !strings.Contains(string(log), `msg="distributed run failed" err="peer 0 lost"`) {
		t.Errorf("rank-1.log: %q", log)
	}
	// rank 0 with nothing written yet: exit 1, run.log
	if code := RecordRankFailure(dir, 0, errors.New("no group")); code != 1 {
		t.Errorf("rank 0: %d", code)
	}
	if res, _ := ReadResult(dir, 0); res == nil || res.Error != "distributed run: no group" {
		t.Errorf("rank 0's result: %+v", res)
	}
}
