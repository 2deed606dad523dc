// Package ioerr says what went wrong when an output cannot be written, in the words a user
// needs: "no space left on device while writing adapters to runs/x/adapters".
package ioerr

import (
	"errors"
	"fmt"
	"syscall"
)

// reasons are the system errors worth naming plainly.
var reasons = []struct {
	errno syscall.Errno
	text  string
}{
	{syscall.ENOSPC, "no space left on device"},
	{syscall.EDQUOT, "disk quota exceeded"},
	{syscall.EROFS, "read-only file system"},
	{syscall.EACCES, "permission denied"},
	{syscall.EPERM, "operation not permitted"},
}

// Writing wraps err from writing what (such as "adapters") to path. The result still
// matches the cause with errors.Is.
func Writing(what, path string, err error) error {
	if err == nil {
		return nil
	}
	for _, r := range reasons {
		if errors.Is(err, r.errno) {
			return &Error{Reason: r.text, What: what, Path: path, Err: err}
		}
	}
	return &Error{What: what, Path: path, Err: err}
}

// Error is a failed write of an output.
type Error struct {
	Reason string // plain words for the system error, "" when there is none to give
	What   string
	Path   string
	Err    error
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s while writing %s to %s; the files written before are intact", e.Reason, e.What, e.Path)
	}
	return fmt.Sprintf("writing %s to %s: %v", e.What, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
