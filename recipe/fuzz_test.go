package recipe

import (
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary bytes (and one override) to the recipe loader: it must never panic,
// and every diagnostic must carry a position or an override.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(base), "memory.limit=6GB")
	for _, file := range []string{"testdata/broken.yaml", "../recipes/llama-3.1-8b-7gb.yaml"} {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b, "stages.train.with.lr=2e-4")
		}
	}
	f.Fuzz(func(t *testing.T, src []byte, override string) {
		r, ds := Load("f.yaml", src, []string{override})
		for _, d := range ds {
			if d.Range.Override == "" && d.Range.Line < 1 {
				t.Fatalf("diagnostic without a position: %s", d)
			}
		}
		if r != nil && !ds.HasErrors() {
			if _, err := r.ResolvedYAML(); err != nil {
				t.Fatalf("valid recipe does not re-encode: %v", err)
			}
			Order(r)
		}
	})
}
