package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Run is one run directory's contents, as `yai runs` and `yai report` read them.
type Run struct {
	Dir        string
	Name       string // the directory's base name
	Steps      []Metrics
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
	if r.Steps, r.Torn, err = ReadMetrics(dir, 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err // a missing metrics.jsonl means no step finished
	}
	if r.Result, err = ReadResult(dir, 0); err != nil {
		return nil, err
	}
	if r.Recipe, err = readRecipe(dir); err != nil {
		return nil, err
	}
	r.RecipeHash = readHash(dir)
	return r, nil
}

// IsRunDir reports whether dir looks like a run directory: the engine writes recipe.yaml
// first.
func IsRunDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, RecipeFile))
	return err == nil
}

// runStamp is the UTC time in run directory names: name-20060102T150405Z[-n].
var runStamp = regexp.MustCompile(`(\d{8}T\d{6}Z)(-\d+)?$`)

func startTime(name string, fallback time.Time) time.Time {
	if m := runStamp.FindStringSubmatch(name); m != nil {
		if t, err := time.Parse(stampLayout, m[1]); err == nil {
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
	return r.Result.Status()
}
