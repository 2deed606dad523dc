package recipe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"

	"github.com/yai-dev/yai/internal/atomicfile"
)

// The dry run caches what it learns from reading whole files (tokenizer loads, data
// tokenization) under the user's cache directory, keyed by the files' content hashes and
// the settings that shape the result, so a second validate is instant. Nothing is written
// beside the user's data or model. A cache that cannot be read or written is only slower.

// cacheVersion changes whenever a cached record's meaning changes.
const cacheVersion = "validate-1"

// cacheDir is where records live; YAI_CACHE_DIR overrides it (tests use a temporary one).
func cacheDir() string {
	if d := os.Getenv("YAI_CACHE_DIR"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "yai", "validate")
}

// cacheKey hashes the parts of a key into a file name.
func cacheKey(parts ...string) string {
	h := sha256.New()
	io.WriteString(h, cacheVersion)
	for _, p := range parts {
		io.WriteString(h, "\x00"+p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fileHash is the sha256 of a file's content.
func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func loadCached(key string, v any) bool {
	dir := cacheDir()
	if dir == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, key+".json"))
	return err == nil && json.Unmarshal(b, v) == nil
}

func storeCached(key string, v any) {
	dir := cacheDir()
	if dir == "" {
		return
	}
	b, err := json.Marshal(v)
	if err != nil || os.MkdirAll(dir, 0o755) != nil {
		return
	}
	_ = atomicfile.Write(filepath.Join(dir, key+".json"), b, 0o644)
}
