package mlx

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/yai-dev/yai/internal/ioerr"
)

// smallFS mounts a fresh tmpfs of the given size (needs root, as CI runs) and returns it.
func smallFS(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// A full disk and a read-only one surface as the system's reason, named with the path, and
// the file that was there before is left intact.
func TestSaveReportsFullAndReadOnlyDisks(t *testing.T) {
	dir := smallFS(t, "size=256k")
	path := filepath.Join(dir, "adapters.safetensors")
	small := Zeros([]int{16}, Float32)
	defer small.Free()
	if err := SaveSafetensors(path, map[string]*Array{"a": small}, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	big := Zeros([]int{1 << 18}, Float32) // 1 MiB: does not fit
	defer big.Free()
	err := SaveSafetensors(path, map[string]*Array{"a": big}, nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	msg := ioerr.Writing("adapters", dir, err).Error()
	if want := "no space left on device while writing adapters to " + dir; len(msg) < len(want) || msg[:len(want)] != want {
		t.Errorf("message %q", msg)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("the earlier file was changed by the failed save")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the failed save left %d files behind", len(entries)-1)
	}

	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	err = SaveSafetensors(path, map[string]*Array{"a": small}, nil)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("err = %v, want EROFS", err)
	}
	if msg := ioerr.Writing("adapters", dir, err).Error(); msg[:len("read-only file system while writing adapters")] != "read-only file system while writing adapters" {
		t.Errorf("message %q", msg)
	}
}
