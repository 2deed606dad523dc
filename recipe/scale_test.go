package recipe

import (
	"fmt"
	"strings"
	"testing"
)

// manyStages is a valid recipe with n extra stages, each after the previous one and with its
// own trigger, so lint, the graph passes and trigger compilation all see n stages.
func manyStages(n int) []byte {
	var b strings.Builder
	b.WriteString(base)
	prev := "clear"
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		fmt.Fprintf(&b, "  - id: %s\n    kind: clear-cache\n    after: [%s]\n    when: step %% %d == 0\n", id, prev, i+1) // every trigger distinct: each one compiles
		prev = id
	}
	return []byte(b.String())
}

// A recipe of tens of thousands of stages lints without error and in time linear in its size
// (BenchmarkLintStages reports the cost per stage at four sizes).
func TestLintManyStages(t *testing.T) {
	r, ds := Load("r.yaml", manyStages(20_000), nil)
	if r == nil || ds.HasErrors() {
		t.Fatalf("diagnostics:\n%s", ds.Format())
	}
	if got := len(Order(r)); got != 20_004 {
		t.Errorf("ordered %d stages, want 20004", got)
	}
}

func BenchmarkLintStages(b *testing.B) {
	for _, n := range []int{1_000, 5_000, 10_000, 20_000} {
		src := manyStages(n)
		b.Run(fmt.Sprintf("stages=%d", n), func(b *testing.B) {
			for b.Loop() {
				if r, ds := ValidateSource("r.yaml", src, nil, ValidateOptions{SkipModel: true}); r == nil {
					b.Fatal(ds)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/stage")
		})
	}
}
