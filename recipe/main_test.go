package recipe

import (
	"os"
	"testing"
)

// TestMain keeps the dry run's cache out of the user's cache directory.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "yai-validate-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("YAI_CACHE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
