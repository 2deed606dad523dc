package ggufimport

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
)

// scratch is a directory for the whole test binary, removed when it ends.
var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ggufimport-test-*")
	if err != nil {
		panic(err)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	importOnce sync.Once
	importErr  error
)

// importedSmolLM2 imports the real SmolLM2 GGUF once per test binary with the quickstart's
// settings (4-bit, group 32, float32 scales) and returns the directory.
func importedSmolLM2(t *testing.T) string {
	t.Helper()
	src := testenv.SmolLM2GGUF(t)
	dir := filepath.Join(scratch, "smollm2")
	importOnce.Do(func() {
		opts := DefaultOptions()
		opts.GroupSize = 32
		_, importErr = Import(src, dir, opts)
	})
	if importErr != nil {
		t.Fatal(importErr)
	}
	return dir
}

// python runs testdata/reference.py with a JSON input and decodes its JSON output.
func python(t *testing.T, cmd, dir string, in, out any) {
	t.Helper()
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(testenv.Python(t), "testdata/reference.py", cmd, dir)
	c.Stdin = bytes.NewReader(js)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	res, err := c.Output()
	if err != nil {
		t.Fatalf("reference.py %s: %v\n%s", cmd, err, stderr.String())
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("reference.py %s output: %v", cmd, err)
	}
}
