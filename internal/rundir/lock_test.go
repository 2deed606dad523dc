package rundir

import (
	"strings"
	"testing"
)

// One process at a time holds a run directory.
func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	a, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); err == nil || !strings.Contains(err.Error(), "is in use by another yai process (pid") {
		t.Errorf("second lock: %v", err)
	}
	a.Unlock()
	b, err := LockDir(dir)
	if err != nil {
		t.Errorf("lock after unlock: %v", err)
	}
	b.Unlock()
}
