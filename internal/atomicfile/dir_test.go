package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// NewDir publishes a complete directory or nothing, and never touches an existing one.
func TestNewDir(t *testing.T) {
	parent := t.TempDir()
	dst := filepath.Join(parent, "out")
	if err := NewDir(dst, func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "a"), []byte("1"), 0o644) }); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "a")); err != nil || string(b) != "1" {
		t.Fatalf("%q, %v", b, err)
	}
	if err := NewDir(dst, func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "a"), []byte("2"), 0o644) }); err == nil {
		t.Errorf("NewDir replaced an existing directory")
	}
	failed := filepath.Join(parent, "failed")
	if err := NewDir(failed, func(tmp string) error { return os.ErrInvalid }); err == nil {
		t.Errorf("fill's error was lost")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a")); string(b) != "1" {
		t.Errorf("existing directory changed")
	}
}
