package data

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/tokenizer"
)

var update = flag.Bool("update", false, "rewrite golden files")

func loadTokenizer(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join("..", "tokenizer", "testdata", "llama3"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type referenceBatch struct {
	Tokens         [][]int32  `json:"tokens"`
	OffsetsLengths [][2]int32 `json:"offsets_lengths"`
}

type referenceSplit struct {
	Examples []json.RawMessage `json:"examples"` // [tokens, offset]
	Batches  []referenceBatch  `json:"batches"`
}

func runMLXReference(t *testing.T, dataDir string, mask bool, batchSize, maxSeq, seed, trainBatches int) map[string]referenceSplit {
	t.Helper()
	maskArg := "0"
	if mask {
		maskArg = "1"
	}
	cmd := exec.Command(testenv.Python(t), filepath.Join("testdata", "mlx_reference.py"),
		filepath.Join("..", "tokenizer", "testdata", "llama3"), dataDir, maskArg,
		fmt.Sprint(batchSize), fmt.Sprint(maxSeq), fmt.Sprint(seed), fmt.Sprint(trainBatches))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mlx_reference.py: %v\n%s", err, stderr.String())
	}
	var result map[string]referenceSplit
	if err := json.Unmarshal(out, &result); err != nil {
		t.Fatal(err)
	}
	return result
}

// trainOnFor is mlx-lm's mask_prompt as a TrainOn.
func trainOnFor(maskPrompt bool) TrainOn {
	if maskPrompt {
		return TrainLast
	}
	return TrainAll
}

func exampleJSON(ex Example) []any { return []any{ex.Tokens, ex.Offset} }

func batchAsReference(b Batch) referenceBatch {
	r := referenceBatch{}
	for i := range b.Size {
		r.Tokens = append(r.Tokens, b.Row(i))
		r.OffsetsLengths = append(r.OffsetsLengths, [2]int32{b.Offsets[i], b.Lengths[i]})
	}
	return r
}

// TestMatchesMLXLM runs mlx-lm's dataset classes and iterate_batches on the same files and
// compares the tokenized rows, prompt offsets, padding, truncation and batch order.
func TestMatchesMLXLM(t *testing.T) {
	tok := loadTokenizer(t)
	const batchSize, maxSeq, seed, trainBatches = 2, 64, 3, 11
	for _, tc := range []struct {
		dir  string
		mask bool
	}{
		{"text", false}, {"completions", false}, {"completions", true}, {"chat", false}, {"chat", true},
	} {
		t.Run(fmt.Sprintf("%s/mask=%v", tc.dir, tc.mask), func(t *testing.T) {
			dir := filepath.Join("testdata", tc.dir)
			want := runMLXReference(t, dir, tc.mask, batchSize, maxSeq, seed, trainBatches)
			train, valid, _, err := Load(dir, tok, Options{TrainOn: trainOnFor(tc.mask), Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			random := NewNumpyRandom(seed)
			for name, ds := range map[string]*Dataset{"train": train, "valid": valid} {
				var got []json.RawMessage
				for _, ex := range ds.Examples {
					raw, _ := json.Marshal(exampleJSON(ex))
					got = append(got, raw)
				}
				wantExamples := make([]string, len(want[name].Examples))
				gotExamples := make([]string, len(got))
				for i := range want[name].Examples {
					wantExamples[i] = compactJSON(t, want[name].Examples[i])
				}
				for i := range got {
					gotExamples[i] = string(got[i])
				}
				if diff := cmp.Diff(wantExamples, gotExamples); diff != "" {
					t.Errorf("%s examples mismatch (-mlx-lm +yai):\n%s", name, diff)
				}
			}
			// Same order of draws from one stream as mlx-lm: the training epochs, then validation.
			trainIt, err := NewBatches(train, BatchConfig{BatchSize: batchSize, MaxSeqLength: maxSeq, Loop: true, Random: random, Logger: discardLogger()})
			if err != nil {
				t.Fatal(err)
			}
			var gotTrain []referenceBatch
			for range trainBatches {
				b, ok := trainIt.Next()
				if !ok {
					t.Fatal("training iterator ended")
				}
				gotTrain = append(gotTrain, batchAsReference(b))
			}
			trainIt.Close()
			if diff := cmp.Diff(want["train"].Batches, gotTrain); diff != "" {
				t.Errorf("train batches mismatch (-mlx-lm +yai):\n%s", diff)
			}
			validIt, err := NewBatches(valid, BatchConfig{BatchSize: batchSize, MaxSeqLength: maxSeq, Random: random, Logger: discardLogger()})
			if err != nil {
				t.Fatal(err)
			}
			var gotValid []referenceBatch
			for b, ok := validIt.Next(); ok; b, ok = validIt.Next() {
				gotValid = append(gotValid, batchAsReference(b))
			}
			if diff := cmp.Diff(want["valid"].Batches, gotValid); diff != "" {
				t.Errorf("valid batches mismatch (-mlx-lm +yai):\n%s", diff)
			}
		})
	}
}

func compactJSON(t *testing.T, raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestNumpyPermutation(t *testing.T) {
	// Values printed by numpy 2.4: np.random.seed(0); permutation(10); permutation(5).
	r := NewNumpyRandom(0)
	if diff := cmp.Diff([]int{2, 8, 4, 9, 1, 6, 7, 3, 0, 5}, r.Permutation(10)); diff != "" {
		t.Errorf("permutation(10) (-numpy +yai):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1, 0, 2, 3, 4}, r.Permutation(5)); diff != "" {
		t.Errorf("second permutation(5) (-numpy +yai):\n%s", diff)
	}
	if diff := cmp.Diff([]int{6, 3, 4, 0, 1, 5, 2}, NewNumpyRandom(12345).Permutation(7)); diff != "" {
		t.Errorf("seed 12345 permutation(7) (-numpy +yai):\n%s", diff)
	}
}

func TestBatchPaddingAndTruncation(t *testing.T) {
	ds := &Dataset{Path: "mem", Examples: []Example{
		{Tokens: seq(5), Offset: 2}, {Tokens: seq(40)}, {Tokens: seq(31)}, {Tokens: seq(100)},
	}}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	it, err := NewBatches(ds, BatchConfig{BatchSize: 2, MaxSeqLength: 80, SortByTokens: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	widths := map[int]Batch{}
	for b, ok := it.Next(); ok; b, ok = it.Next() {
		widths[b.Width] = b
	}
	// Sorted by tokens: {5, 31} → 1+32 = 33 wide; {40, 100} → 1+128 capped at 80.
	small, ok := widths[33]
	if !ok {
		t.Fatalf("no batch of width 33, got widths %v", keys(widths))
	}
	if diff := cmp.Diff([]int32{2, 0}, small.Offsets); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{5, 31}, small.Lengths); diff != "" {
		t.Errorf("lengths (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(seq(5), make([]int32, 28)...), small.Row(0)); diff != "" {
		t.Errorf("padded row (-want +got):\n%s", diff)
	}
	big, ok := widths[80]
	if !ok {
		t.Fatalf("no batch of width 80, got widths %v", keys(widths))
	}
	if diff := cmp.Diff([]int32{40, 80}, big.Lengths); diff != "" {
		t.Errorf("truncated lengths (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "truncated") || !strings.Contains(logs.String(), "longest=100") {
		t.Errorf("no truncation warning logged: %q", logs.String())
	}
}

func TestTooFewRows(t *testing.T) {
	_, err := NewBatches(&Dataset{Path: "valid.jsonl", Examples: []Example{{Tokens: seq(3)}}}, BatchConfig{BatchSize: 4})
	want := "valid.jsonl: dataset must have at least batch_size=4 examples but only has 1"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestCloseStopsPrefetch(t *testing.T) {
	ds := &Dataset{Path: "mem"}
	for i := range 50 {
		ds.Examples = append(ds.Examples, Example{Tokens: seq(i + 1)})
	}
	it, err := NewBatches(ds, BatchConfig{BatchSize: 1, Loop: true, Prefetch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := it.Next(); !ok {
		t.Fatal("no first batch")
	}
	it.Close() // must return: the producer is blocked on a full channel
	if _, ok := it.Next(); ok {
		t.Error("Next after Close returned a batch")
	}
}

func seq(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i + 1)
	}
	return out
}

func keys(m map[int]Batch) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// TestBadRows checks the located error of every file in testdata/bad against
// testdata/bad/errors.golden (go test ./data -run TestBadRows -update rewrites it).
func TestBadRows(t *testing.T) {
	tok := loadTokenizer(t)
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad-row cases: %v", err)
	}
	sort.Strings(files)
	var got strings.Builder
	for _, file := range files {
		opts := Options{}
		if strings.Contains(file, "mask") {
			opts.TrainOn = TrainLast
		}
		if strings.Contains(file, "format_chat") {
			opts.Format, opts.TrainOn = "chat", TrainLast // the format is named before masking is judged
		}
		_, err := LoadFile(file, tok, opts)
		if err == nil {
			t.Errorf("%s: loaded without error", file)
			continue
		}
		fmt.Fprintf(&got, "%s\n", err)
	}
	golden := filepath.Join("testdata", "bad", "errors.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(got.String(), "\n")); diff != "" {
		t.Errorf("errors mismatch (-golden +got):\n%s", diff)
	}
}

// KeepOrder (data's shuffle: false) serves consecutive rows in file order, every epoch, even
// when SortByTokens would reorder them, and draws nothing from the generator.
func TestKeepOrderServesFileOrder(t *testing.T) {
	ds := &Dataset{Path: "mem", Examples: []Example{{Tokens: seq(9)}, {Tokens: seq(3)}, {Tokens: seq(7)}, {Tokens: seq(2)}, {Tokens: seq(5)}, {Tokens: seq(4)}}}
	random := NewNumpyRandom(3)
	it, err := NewBatches(ds, BatchConfig{BatchSize: 2, Loop: true, SortByTokens: true, KeepOrder: true, Random: random})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got [][]int32
	for range 6 { // two epochs
		b, _ := it.Next()
		got = append(got, b.Lengths)
	}
	want := [][]int32{{9, 3}, {7, 2}, {5, 4}, {9, 3}, {7, 2}, {5, 4}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("batch row lengths (-file order +got):\n%s", diff)
	}
	if diff := cmp.Diff(NewNumpyRandom(3).Permutation(4), random.Permutation(4)); diff != "" {
		t.Errorf("KeepOrder drew from the generator (-untouched +got):\n%s", diff)
	}

	shuffled, err := NewBatches(ds, BatchConfig{BatchSize: 2, Loop: true, Random: NewNumpyRandom(3)})
	if err != nil {
		t.Fatal(err)
	}
	defer shuffled.Close()
	var order [][]int32
	for range 3 {
		b, _ := shuffled.Next()
		order = append(order, b.Lengths)
	}
	if cmp.Equal(want[:3], order) {
		t.Errorf("the shuffled iterator served file order too: %v", order)
	}
}

// An iterator restored from Position and the generator's state serves exactly what the
// original serves next, across epoch boundaries.
func TestSeekContinuesExactly(t *testing.T) {
	ds := &Dataset{Path: "mem"}
	for i := range 14 {
		ds.Examples = append(ds.Examples, Example{Tokens: seq(3 + i%5)})
	}
	cfg := func(r *NumpyRandom) BatchConfig { return BatchConfig{BatchSize: 4, Loop: true, Random: r} }
	for _, stop := range []int{0, 2, 3, 7} {
		ra := NewNumpyRandom(9)
		a, _ := NewBatches(ds, cfg(ra))
		for range stop {
			a.Next()
		}
		pos, state := a.Position(), ra.State()
		rb := NewNumpyRandom(1)
		b, _ := NewBatches(ds, cfg(rb))
		if err := rb.SetState(state); err != nil {
			t.Fatal(err)
		}
		if err := b.Seek(pos); err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			x, _ := a.Next()
			y, _ := b.Next()
			if !cmp.Equal(x.Examples, y.Examples) {
				t.Fatalf("after %d batches, resumed batch %d has rows %v, the original %v", stop, i, y.Examples, x.Examples)
			}
		}
		a.Close()
		b.Close()
	}
	a, _ := NewBatches(ds, cfg(nil))
	defer a.Close()
	if err := a.Seek(Position{Started: true, Permutation: []int{0, 0, 1}}); err == nil {
		t.Error("Seek accepted a position that is no permutation")
	}
}

// A dataset whose every row is too long warns about truncation once per iterator, not once
// per batch: a 1,000-step run over such rows would otherwise log a thousand copies.
func TestTruncationIsSaidOnce(t *testing.T) {
	for _, pack := range []bool{false, true} {
		ds := &Dataset{Path: "mem", Examples: []Example{{Tokens: seq(100)}, {Tokens: seq(90)}, {Tokens: seq(120)}}}
		var logs bytes.Buffer
		it, err := NewBatches(ds, BatchConfig{BatchSize: 1, MaxSeqLength: 64, Loop: true, Pack: pack, Random: NewNumpyRandom(0),
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		for range 12 { // four epochs, every batch truncated
			if _, ok := it.Next(); !ok {
				t.Fatal("the looping iterator ended")
			}
		}
		it.Close()
		if n := strings.Count(logs.String(), "will be truncated"); n != 1 {
			t.Errorf("pack %v: the truncation warning was logged %d times over 12 truncated batches, want once:\n%s", pack, n, logs.String())
		}
	}
}
