package rundir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ranks.json reads back as written; a write that fails leaves no partial file and keeps
// nothing of its own beside the target.
func TestRanksAtomic(t *testing.T) {
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

	// The move into place fails (ranks.json is a directory someone made): the write reports
	// it and leaves neither a ranks.json file nor its temporary file.
	blocked := t.TempDir()
	os.MkdirAll(filepath.Join(blocked, RanksFile, "x"), 0o755)
	if err := WriteRanks(blocked, exits); err == nil {
		t.Fatal("WriteRanks into a blocked path succeeded")
	}
	entries, _ := os.ReadDir(blocked)
	if len(entries) != 1 || !entries[0].IsDir() {
		t.Errorf("left behind: %v", entries)
	}
	// A write cut short (the file size limit stops it after 16 bytes) leaves the old
	// ranks.json whole and nothing beside it.
	t.Run("write cut short", func(t *testing.T) {
		var old syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal("reading the file size limit:", err)
		}
		short := old
		short.Cur = 16
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &short); err != nil {
			t.Fatal("setting the file size limit:", err)
		}
		err := WriteRanks(dir, append(exits, exits...))
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
		if err == nil {
			t.Fatal("a write over the file size limit succeeded")
		}
		if got, err := ReadRanks(dir); err != nil || !cmp.Equal(got, exits) {
			t.Errorf("ranks.json after a write cut short: %+v, %v; want the old one", got, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("left behind: %v", entries)
		}
	})
}

// The record of a rank failure keeps the engine's own error in front; what keeps it from
// being written is returned, not dropped.
func TestRecordRankFailure(t *testing.T) {
	dir := t.TempDir()
	if err := WriteResult(dir, 1, Result{ExitCode: 5, Steps: 3, Error: "stage failed"}); err != nil {
		t.Fatal(err)
	}
	code, err := RecordRankFailure(dir, 1, errors.New("peer 0 lost"))
	if err != nil || code != 5 {
		t.Fatalf("code %d, %v", code, err)
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
	if code, err := RecordRankFailure(dir, 0, errors.New("no group")); err != nil || code != 1 {
		t.Errorf("rank 0: %d, %v", code, err)
	}
	if res, _ := ReadResult(dir, 0); res == nil || res.Error != "distributed run: no group" {
		t.Errorf("rank 0's result: %+v", res)
	}

	// An unreadable earlier result is replaced, and the record says so.
	write(t, dir, "rank-2.result.json", "{\"exit_code\": 4")
	if _, err := RecordRankFailure(dir, 2, errors.New("lost")); err != nil {
		t.Fatal(err)
	}
	if res, err := ReadResult(dir, 2); err != nil || !strings.Contains(res.Error, "the earlier rank-2.result.json could not be read") {
		t.Errorf("rank 2's result: %+v, %v", res, err)
	}
}

// When the record cannot be written (here: the log and the result are directories), the
// errors reach the caller, which has only its stderr left to tell.
func TestRecordRankFailureWriteErrorSurfaces(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rank-1.log", "x"), 0o755)
	code, err := RecordRankFailure(dir, 1, errors.New("peer lost"))
	if err == nil || !strings.Contains(err.Error(), "rank-1.log") || code != 1 {
		t.Errorf("log unwritable: code %d, %v", code, err)
	}
	if res, rerr := ReadResult(dir, 1); rerr != nil || res == nil || res.Reason != "peer lost" {
		t.Errorf("the result is still written when the log is not: %+v, %v", res, rerr)
	}
	os.MkdirAll(filepath.Join(dir, "rank-2.result.json", "x"), 0o755)
	_, err = RecordRankFailure(dir, 2, errors.New("peer lost"))
	if err == nil || !strings.Contains(err.Error(), "rank-2.result.json") {
		t.Errorf("result unwritable: %v", err)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "rank-2.log")); !strings.Contains(string(log), "peer lost") {
		t.Errorf("the log is still written when the result is not: %q", log)
	}
}
