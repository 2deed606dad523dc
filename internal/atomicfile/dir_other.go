//go:build !linux

package atomicfile

import (
	"errors"
	"fmt"
	"os"
)

// renameNoReplace moves the finished directory into place unless dst exists. Without an
// atomic no-replace rename the check and the rename are two steps.
func renameNoReplace(src, dst string) error {
	if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("move the finished directory to %s: it already exists", dst)
	}
	return os.Rename(src, dst)
}
