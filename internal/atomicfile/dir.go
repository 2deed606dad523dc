package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// NewDir builds a directory that must not exist yet: fill writes into a temporary directory
// beside dst, which is then renamed to dst. A reader sees the whole directory or none of it,
// and an existing directory is never written to or replaced.
func NewDir(dst string, fill func(tmp string) error) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s already exists: choose a new directory", dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := fill(tmp); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return renameNoReplace(tmp, dst)
}
