package rundir

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/stages"
)

// WriteRecipe stores the resolved recipe (the recipe as run, overrides applied) in dir as
// recipe.yaml, with its sha256 in recipe.sha256 (sha256sum's format), and returns the hash.
func WriteRecipe(dir string, resolved []byte) (string, error) {
	sum := sha256.Sum256(resolved)
	hash := hex.EncodeToString(sum[:])
	if err := atomicfile.Write(filepath.Join(dir, RecipeFile), resolved, 0o644); err != nil {
		return "", err
	}
	line := hash + "  " + RecipeFile + "\n"
	return hash, atomicfile.Write(filepath.Join(dir, HashFile), []byte(line), 0o644)
}

// readHash is the hash recipe.sha256 holds, "" when it is missing or empty.
func readHash(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, HashFile))
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return ""
}

// Recipe is what a report needs from the run's resolved recipe: which stage ids are of which
// kind (metrics name the stages that fired by id) and the guard's threshold.
type Recipe struct {
	Name  string
	Kinds map[string]string // stage id → kind
	// GuardBuffer is the first guard's buffer (its default when unset); nil without a guard.
	GuardBuffer *float64
	// GuardLimit is that guard's own limit in bytes; 0 means memory.limit.
	GuardLimit int64
}

// defaultGuardBuffer is the guard stage's documented default.
const defaultGuardBuffer = 0.2

func readRecipe(dir string) (Recipe, error) {
	path := filepath.Join(dir, RecipeFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Recipe{}, err
	}
	var doc struct {
		Name   string `yaml:"name"`
		Stages []struct {
			ID   string `yaml:"id"`
			Kind string `yaml:"kind"`
			With struct {
				Buffer *float64 `yaml:"buffer"`
				Limit  string   `yaml:"limit"`
			} `yaml:"with"`
		} `yaml:"stages"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Recipe{}, fmt.Errorf("%s: %w", path, err)
	}
	r := Recipe{Name: doc.Name, Kinds: map[string]string{}}
	for _, s := range doc.Stages {
		r.Kinds[s.ID] = s.Kind
		if s.Kind != "guard" || r.GuardBuffer != nil {
			continue
		}
		buffer := defaultGuardBuffer
		if s.With.Buffer != nil {
			buffer = *s.With.Buffer
		}
		r.GuardBuffer = &buffer
		if s.With.Limit != "" {
			b, err := stages.ParseBytes(s.With.Limit)
			if err != nil {
				return Recipe{}, fmt.Errorf("%s: stage %s: limit: %w", path, s.ID, err)
			}
			r.GuardLimit = int64(b)
		}
	}
	return r, nil
}
