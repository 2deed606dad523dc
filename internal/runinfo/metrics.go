package runinfo

import (
	"errors"
	"io/fs"

	"github.com/yai-dev/yai/internal/rundir"
)

// MetricsFile and ResultFile are the names the engine writes in a run directory.
const (
	MetricsFile = rundir.MetricsFile
	ResultFile  = rundir.ResultFile
	RecipeFile  = rundir.RecipeFile
	HashFile    = rundir.HashFile
)

// Step is one line of metrics.jsonl, as the engine writes it.
type Step = rundir.Metrics

// readMetrics parses metrics.jsonl: a torn last line (a killed run) is dropped and reported;
// any other bad line is an error naming file and line. A missing file means no step finished.
func readMetrics(dir string) (steps []Step, torn bool, err error) {
	steps, torn, err = rundir.ReadMetrics(dir, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return steps, torn, err
}
