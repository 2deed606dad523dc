package runinfo

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/yai-dev/yai/runtime"
)

// MetricsFile and ResultFile are the names the engine writes in a run directory.
const (
	MetricsFile = "metrics.jsonl"
	ResultFile  = "result.json"
	RecipeFile  = "recipe.yaml"
	HashFile    = "recipe.sha256"
)

// Step is one line of metrics.jsonl, as the engine writes it.
type Step = runtime.Metrics

// readMetrics parses metrics.jsonl: a torn last line (a killed run) is dropped and reported;
// any other bad line is an error naming file and line. A missing file means no step finished.
func readMetrics(dir string) (steps []Step, torn bool, err error) {
	steps, torn, err = runtime.ReadMetricsTorn(filepath.Join(dir, MetricsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return steps, torn, err
}
