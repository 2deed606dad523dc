package recipe

import (
	"os"
	"testing"

	"github.com/yai-dev/yai/stages/stage"
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

// FuzzCompileTrigger feeds arbitrary expressions to the trigger compiler, as `when:` does:
// over the limits they are refused before the compiler recurses, and nothing panics or
// overflows the stack.
func FuzzCompileTrigger(f *testing.F) {
	for _, s := range []string{"step % 3 == 0", "mlx.active > 0.7*limit", "step % (limit < 10*GB ? 5 : 10) == 0",
		"((((true))))", "!!!!!true", "loss > val_loss && growth > 100*MB", `"a" + "b" == "ab"`, "[1,2,3][0] == 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := CompileTrigger(src)
		if err != nil {
			return
		}
		if _, err := RunTrigger(p, &stage.Figures{Step: 3, Limit: 1 << 30}); err != nil {
			return // runtime errors (division by zero) are reported, not panics
		}
	})
}
