package runinfo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Result is result.json.
type Result struct {
	ExitCode int    `json:"exit_code"`
	Steps    int64  `json:"steps"`
	Reason   string `json:"reason"`
	Error    string `json:"error"`
}

// Run is one run directory's contents.
type Run struct {
	Dir        string
	Name       string // the directory's base name
	Steps      []Step
	Torn       bool    // the last metrics line was cut short
	Result     *Result // nil while running, or when the process was killed
	RecipeHash string  // sha256 of recipe.yaml, from recipe.sha256
	Recipe     Recipe
	Started    time.Time
}

// Read reads the run directory dir. Files a run writes late (result.json, metrics.jsonl)
// may be missing; a file that exists but does not parse is an error naming it.
func Read(dir string) (*Run, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a run directory", dir)
	}
	if !IsRunDir(dir) {
		return nil, fmt.Errorf("%s is not a run directory: it has no %s", dir, RecipeFile)
	}
	r := &Run{Dir: dir, Name: filepath.Base(dir), Started: startTime(filepath.Base(dir), info.ModTime())}
	if r.Steps, r.Torn, err = readMetrics(dir); err != nil {
		return nil, err
	}
	if r.Result, err = readResult(dir); err != nil {
		return nil, err
	}
	if r.Recipe, err = readRecipe(dir); err != nil {
		return nil, err
	}
	if hash, err := os.ReadFile(filepath.Join(dir, HashFile)); err == nil {
		if f := strings.Fields(string(hash)); len(f) > 0 {
			r.RecipeHash = f[0]
		}
	}
	return r, nil
}

// IsRunDir reports whether dir looks like a run directory: the engine writes recipe.yaml
// first.
func IsRunDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, RecipeFile))
	return err == nil
}

func readResult(dir string) (*Result, error) {
	path := filepath.Join(dir, ResultFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &res, nil
}

// runStamp is the UTC time the engine puts in run directory names: name-20060102T150405Z[-n].
var runStamp = regexp.MustCompile(`(\d{8}T\d{6}Z)(-\d+)?$`)

func startTime(name string, fallback time.Time) time.Time {
	if m := runStamp.FindStringSubmatch(name); m != nil {
		if t, err := time.Parse("20060102T150405Z", m[1]); err == nil {
			return t
		}
	}
	return fallback
}

// Status names how the run ended, from result.json's exit code.
func (r *Run) Status() string {
	if r.Result == nil {
		return "running or killed"
	}
	switch r.Result.ExitCode {
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
		return fmt.Sprintf("failed (exit %d)", r.Result.ExitCode)
	}
}
