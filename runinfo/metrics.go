package runinfo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MetricsFile and ResultFile are the names the engine writes in a run directory.
const (
	MetricsFile = "metrics.jsonl"
	ResultFile  = "result.json"
	RecipeFile  = "recipe.yaml"
	HashFile    = "recipe.sha256"
)

// Step is one line of metrics.jsonl. Tokens counts this step's tokens; TokPerSec is the
// run's tokens so far over Elapsed.
type Step struct {
	Step      int64          `json:"step"`
	Loss      float64        `json:"loss"`
	ValLoss   *float64       `json:"val_loss"`
	Tokens    int64          `json:"tokens"`
	TokPerSec float64        `json:"tok_s"`
	LR        float64        `json:"lr"`
	Elapsed   float64        `json:"elapsed"`
	MLXActive int64          `json:"mlx_active"`
	MLXPeak   int64          `json:"mlx_peak"`
	MLXCache  int64          `json:"mlx_cache"`
	MLXArrays int64          `json:"mlx_arrays"`
	RSS       int64          `json:"rss"`
	Limit     int64          `json:"limit"`
	Growth    float64        `json:"growth"`
	Fired     []string       `json:"fired"`
	Notes     map[string]any `json:"notes"`
}

// readMetrics parses metrics.jsonl. A last line without its newline that does not parse was
// cut short by a kill and is dropped (torn reports it); any other bad line is an error
// naming file and line. A missing file means no step finished.
func readMetrics(dir string) (steps []Step, torn bool, err error) {
	path := filepath.Join(dir, MetricsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var s Step
		if err := json.Unmarshal(line, &s); err != nil {
			if i == len(lines)-1 { // no newline after it: written in part
				return steps, true, nil
			}
			return nil, false, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		steps = append(steps, s)
	}
	return steps, false, nil
}
