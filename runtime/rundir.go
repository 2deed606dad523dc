package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/yai-dev/yai/recipe"

	"github.com/yai-dev/yai/internal/atomicfile"
)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// NewRunDir creates a fresh directory runsDir/<name>-<UTC time>[-n]. It uses os.Mkdir, so an
// existing run directory is never reused or overwritten.
func NewRunDir(runsDir, name string, now time.Time) (string, error) {
	if err := os.MkdirAll(runsDir, 0o755); err != nil {
		return "", err
	}
	name = unsafeName.ReplaceAllString(name, "-")
	if name == "" {
		name = "run"
	}
	base := filepath.Join(runsDir, name+"-"+now.UTC().Format("20060102T150405Z"))
	for n := 1; n <= 1000; n++ {
		dir := base
		if n > 1 {
			dir = fmt.Sprintf("%s-%d", base, n)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free run directory name under %s", base)
}

// writeResolvedRecipe stores the recipe as run (overrides applied) and its sha256.
func writeResolvedRecipe(dir string, r *recipe.Recipe) (string, error) {
	data, err := r.ResolvedYAML()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if err := atomicfile.Write(filepath.Join(dir, "recipe.yaml"), data, 0o644); err != nil {
		return "", err
	}
	line := hash + "  recipe.yaml\n"
	return hash, atomicfile.Write(filepath.Join(dir, "recipe.sha256"), []byte(line), 0o644)
}
