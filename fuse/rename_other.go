//go:build !linux

package fuse

import (
	"errors"
	"fmt"
	"os"
)

// renameNoReplace moves the finished directory into place unless dst exists. Without an
// atomic no-replace rename the check and the rename are two steps.
func renameNoReplace(src, dst string) error {
	if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("move the fused model into %s: it already exists", dst)
	}
	return os.Rename(src, dst)
}
