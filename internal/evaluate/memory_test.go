package evaluate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/mlx"
)

// The batch loop holds memory flat: over batches of one width, evaluating 12 batches peaks
// no higher than evaluating 3, and afterwards the live arrays are those before.
//
// Two runs of the same batches may peak up to one intermediate apart (about 128 KB here):
// MLX's CPU worker drops its hold on an intermediate as it finishes, racing the next
// allocation. The bound allows 512 KB for that. One batch's logits alone take 1 MB, so
// keeping anything the size of a row's logits per batch grows the peak by more than 2 MB over
// the 9 further batches.
func TestEvaluationMemoryFlat(t *testing.T) {
	l, err := generate.Load(testmodel.Tiny(t, "tiny"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	var rows strings.Builder
	for i := range 48 {
		fmt.Fprintf(&rows, "{\"text\": \"row %03d has the same length as every other row here\"}\n", i)
	}
	path := filepath.Join(t.TempDir(), "test.jsonl")
	os.WriteFile(path, []byte(rows.String()), 0o644)
	ds, err := data.LoadFile(path, l.Tokenizer, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	peak := func(batches int) uint64 {
		var p uint64
		mlx.Do(func() error { mlx.ClearCache(); mlx.ResetPeakMemory(); return nil })
		if _, err := Dataset(l.Model, ds, Options{BatchSize: 4, Batches: batches}); err != nil {
			t.Fatal(err)
		}
		mlx.Do(func() error { p = mlx.Memory().Peak; return nil })
		return p
	}
	peak(12) // first use: compiled traces and constants MLX keeps once
	before := mlx.LiveArrays()
	few, many := peak(3), peak(12)
	t.Logf("peak over 3 batches %d bytes, over 12 batches %d bytes", few, many)
	if many > few+512<<10 {
		t.Errorf("peak grew from %d to %d bytes with more batches", few, many)
	}
	if after := mlx.LiveArrays(); after != before {
		t.Errorf("%d live arrays after evaluating, %d before", after, before)
	}
}
