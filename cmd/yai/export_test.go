package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
)

// The README's table of which family exports to which format is the one yai export --help
// prints from the exporters themselves.
func TestReadmeHasTheExportTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if table := exportTable(); !strings.Contains(string(readme), table) {
		t.Errorf("README.md does not hold the export table; paste it:\n%s", table)
	}
}

// A family a format does not export is refused with the format and the families it exports
// named, and nothing is written.
func TestExportRefusesUnsupportedFamilies(t *testing.T) {
	// Every family exports to gguf and gguf-lora: only peft has a family to refuse.
	for format, preset := range map[string]string{"peft": "tiny-mixtral"} {
		dir := testmodel.Tiny(t, preset)
		adapter := testmodel.RandomAdapterOn(t, dir, []string{"self_attn.q_proj"}, 3, 0.05)
		out := filepath.Join(t.TempDir(), "out")
		var stdout, stderr strings.Builder
		code := exportMain([]string{format, "--model", dir, "--adapter", adapter, "--out", out}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "cannot be exported as "+format) || !strings.Contains(stderr.String(), "llama") {
			t.Errorf("%s of %s: exit %d, %q", format, preset, code, stderr.String())
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: a refused export wrote %s", format, out)
		}
	}
}
