package evaluate

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/internal/train"
)

// With every assistant turn trained, the evaluation's loss (the full logits, masked) equals
// the trainer's (the chunked head over the gathered positions) on the same batches, and
// counts the targets the examples say, rows cut at max_seq_length included.
func TestAssistantTurnsLossMatchesTrainer(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	family := testmodel.Family{Name: "quickstart", Preset: "tiny", Keys: testmodel.AdapterKeys}
	l, err := generate.Load(dir, family.Adapter(t, dir, 11, 0.3))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	var rows strings.Builder
	for i := range 8 {
		fmt.Fprintf(&rows, `{"messages": [{"role": "user", "content": "Question %d?"}, {"role": "assistant", "content": "Answer %d is %s."}, {"role": "user", "content": "And then?"}, {"role": "assistant", "content": "Then %d."}]}`+"\n",
			i, i, strings.Repeat("long ", i*3), i)
	}
	path := filepath.Join(t.TempDir(), "test.jsonl")
	if err := os.WriteFile(path, []byte(rows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := data.LoadFile(path, l.Tokenizer, data.Options{TrainOn: data.TrainAssistant})
	if err != nil {
		t.Fatal(err)
	}
	const batch, maxSeq = 2, 96
	got, err := Dataset(l.Model, ds, Options{BatchSize: batch, MaxSeqLength: maxSeq})
	if err != nil {
		t.Fatal(err)
	}
	targets, cut := 0, 0
	for _, ex := range ds.Examples {
		targets += ex.Targets(maxSeq)
		if len(ex.Tokens) > maxSeq {
			cut++
		}
	}
	if got.Tokens != targets || cut == 0 {
		t.Errorf("evaluation counts %d tokens, the examples' targets %d (%d rows cut)", got.Tokens, targets, cut)
	}
	it, err := data.NewBatches(ds, data.BatchConfig{BatchSize: batch, MaxSeqLength: maxSeq, Random: data.NewNumpyRandom(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var batches []train.Batch
	for b, ok := it.Next(); ok; b, ok = it.Next() {
		tb := train.Batch{Tokens: b.Tokens, Rows: b.Size, Cols: b.Width, Spans: b.Spans}
		for i := range b.Size {
			tb.Lengths = append(tb.Lengths, int(b.Lengths[i]))
		}
		batches = append(batches, tb)
	}
	tr, err := train.NewTrainerWithAdapters(l.Model, l.Adapters, optim.DefaultConfig(), train.Options{LossChunk: 32})
	if err != nil {
		t.Fatal(err)
	}
	want, err := tr.Evaluate(batches)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.Loss-want) > 1e-5*want {
		t.Errorf("evaluation loss %v, trainer's %v", got.Loss, want)
	}
}
