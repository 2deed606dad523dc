package rundir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// SourceFile is source.json: where the run's recipe came from.
const SourceFile = "source.json"

// Source is source.json. recipe.yaml keeps the model and data paths as the recipe wrote
// them; a relative one resolves against RecipeDir.
type Source struct {
	RecipeDir string `json:"recipe_dir"`
}

// WriteSource writes source.json in dir.
func WriteSource(dir string, s Source) error {
	return writeJSON(filepath.Join(dir, SourceFile), s)
}

// RecipeDir is where the relative paths of the recipe in dir resolve: dir is a run
// directory (its source.json, or, for a run written before it, its newest complete
// checkpoint's engine.json) or a checkpoint directory (its engine.json). "" when dir records
// none.
func RecipeDir(dir string) (string, error) {
	var s Source
	err := readJSON(filepath.Join(dir, SourceFile), &s)
	switch {
	case err == nil && s.RecipeDir != "":
		return s.RecipeDir, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, EngineFile)); err == nil {
		c, err := ReadCheckpoint(dir)
		if err != nil {
			return "", err
		}
		return c.State.RecipeDir, nil
	}
	c, err := LatestCheckpoint(dir)
	if errors.Is(err, ErrNoCheckpoint) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return c.State.RecipeDir, nil
}
