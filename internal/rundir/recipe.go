package rundir

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"

	"github.com/yai-dev/yai/internal/atomicfile"
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
