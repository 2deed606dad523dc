package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// RankExit is how one rank of a launch ended: one entry of ranks.json, which the launcher
// writes once every rank is gone.
type RankExit struct {
	Rank     int    `json:"rank"`
	Host     string `json:"host"`
	ExitCode int    `json:"exit_code"`        // -1 when a signal ended it
	Signal   string `json:"signal,omitempty"` // the signal that ended it
	Killed   bool   `json:"killed_by_launcher,omitempty"`
}

// WriteRanks writes ranks.json in dir, atomically.
func WriteRanks(dir string, exits []RankExit) error {
	return writeJSON(filepath.Join(dir, RanksFile), exits)
}

// ReadRanks reads ranks.json in dir.
func ReadRanks(dir string) ([]RankExit, error) {
	var exits []RankExit
	if err := readJSON(filepath.Join(dir, RanksFile), &exits); err != nil {
		return nil, err
	}
	return exits, nil
}

// RecordRankFailure writes into a rank's result file (and log) why its distributed run ended
// when the engine alone cannot say: a peer was lost, or the rank could not join its group.
// The engine's own error, when it got to write one, is kept in front; when the rank could
// not end by itself (stuck in a collective on a silent peer) this is the only record. It
// returns the exit code the rank ends with, and what kept the record from being written
// (the caller has nowhere else to put it but its stderr).
func RecordRankFailure(dir string, rank int, cause error) (int, error) {
	res, err := ReadResult(dir, rank)
	if res == nil {
		res = &Result{}
	}
	if res.ExitCode == 0 {
		res.ExitCode = 1
	}
	if res.Error != "" {
		res.Error += "; "
	}
	res.Error += "distributed run: " + cause.Error()
	if err != nil { // replaced by this record: say what it was
		res.Error += fmt.Sprintf(" (the earlier %s could not be read: %v)", RankFile(rank, ResultFile), err)
	}
	if res.Reason == "" {
		res.Reason = cause.Error()
	}
	var errs []error
	if err := WriteResult(dir, rank, *res); err != nil {
		errs = append(errs, fmt.Errorf("record the failure in %s: %w", RankFile(rank, ResultFile), err))
	}
	line := fmt.Sprintf("time=%s level=ERROR msg=\"distributed run failed\" err=%q\n", time.Now().Format(time.RFC3339), cause.Error())
	if err := appendSynced(filepath.Join(dir, LogName(rank)), line); err != nil {
		errs = append(errs, fmt.Errorf("record the failure in %s: %w", LogName(rank), err))
	}
	return res.ExitCode, errors.Join(errs...)
}

// appendSynced appends line to the file at path and syncs it.
func appendSynced(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
