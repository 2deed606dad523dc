package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/yai-dev/yai/internal/atomicfile"
)

// Result is result.json (rank-N.result.json on rank N): how a run ended.
type Result struct {
	ExitCode int    `json:"exit_code"`
	Steps    int64  `json:"steps"` // steps completed
	Reason   string `json:"reason"`
	Error    string `json:"error"`
	Skipped  int64  `json:"skipped_nonfinite"`
	// OverLimit counts this run directory's steps whose MLX peak passed memory.limit (the
	// limit is a promise on every step, so a crossing is counted, never dropped); Worst is
	// the one furthest over. Both are left out when no step passed it, so a result written
	// before they existed reads the same.
	OverLimit   int64          `json:"over_limit_steps,omitempty"`
	Worst       *OverLimitStep `json:"worst_over_limit,omitempty"`
	Parent      string         `json:"parent,omitempty"`       // the run this one resumed
	ResumedFrom string         `json:"resumed_from,omitempty"` // the checkpoint it started from
}

// OverLimitStep is a step whose MLX peak passed the run's memory limit.
type OverLimitStep struct {
	Step    int64 `json:"step"`
	MLXPeak int64 `json:"mlx_peak"`
	Limit   int64 `json:"limit"`
}

// Over is how far the step's peak passed the limit, in bytes.
func (o OverLimitStep) Over() int64 { return o.MLXPeak - o.Limit }

// WriteResult writes rank's result file in dir, atomically.
func WriteResult(dir string, rank int, r Result) error {
	return writeJSON(filepath.Join(dir, RankFile(rank, ResultFile)), r)
}

// ReadResult reads rank's result file in dir: nil, and no error, when there is none (the
// run is going, or was killed).
func ReadResult(dir string, rank int) (*Result, error) {
	var res Result
	err := readJSON(filepath.Join(dir, RankFile(rank, ResultFile)), &res)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// Status names how the run ended, from the exit code.
func (r *Result) Status() string {
	switch r.ExitCode {
	case 0:
		return "done"
	case 3:
		return "stopped by guard"
	case 4:
		return "aborted by guard"
	case 5:
		return "stopped: non-finite step"
	case 129, 130, 143: // SIGHUP, SIGINT, SIGTERM
		return "interrupted"
	case 1:
		return "failed"
	default:
		return fmt.Sprintf("failed (exit %d)", r.ExitCode)
	}
}

// writeJSON writes v as indented JSON and a newline, atomically: the form of every JSON file
// of a run directory.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}

// readJSON reads the JSON file at path into v; a file that does not parse is an error naming
// it.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
