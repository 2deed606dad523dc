package atomicfile

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// renameNoReplace moves the finished directory into place, failing if something appeared
// at dst meanwhile (rename(2) alone would replace an empty directory).
func renameNoReplace(src, dst string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE); err != nil {
		return fmt.Errorf("move the finished directory to %s: %w", dst, err)
	}
	return nil
}
