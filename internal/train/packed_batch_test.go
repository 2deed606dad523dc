package train

import (
	"math"
	"math/rand"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/mlx"
)

type example struct {
	tokens []int32
	offset int
	spans  []data.Span // when not nil, the trained tokens in place of offset
}

// plainBatch puts examples in rows of their own, padded as mlx-lm pads.
func plainBatch(exs []example) Batch {
	longest := 0
	for _, e := range exs {
		longest = max(longest, len(e.tokens))
	}
	cols := Bucket(longest + 1)
	b := Batch{Rows: len(exs), Cols: cols, Tokens: make([]int32, len(exs)*cols)}
	for r, e := range exs {
		copy(b.Tokens[r*cols:], e.tokens)
		b.Offsets = append(b.Offsets, e.offset)
		b.Lengths = append(b.Lengths, len(e.tokens))
		if e.spans != nil {
			if b.Spans == nil {
				b.Spans = make([][]data.Span, len(exs))
			}
			b.Spans[r] = e.spans
		}
	}
	return b
}

// packedBatch puts the examples one after another in a single row of width cols.
func packedBatch(exs []example, cols int) Batch {
	b := Batch{Rows: 1, Cols: cols, Tokens: make([]int32, cols), Segments: [][]Segment{nil}}
	at := 0
	for _, e := range exs {
		copy(b.Tokens[at:], e.tokens)
		b.Segments[0] = append(b.Segments[0], Segment{Start: at, Len: len(e.tokens), Offset: e.offset, Spans: e.spans})
		at += len(e.tokens)
	}
	return b
}

// Examples packed into one row have the losses they have alone: each example's loss inside
// the packed row (its neighbours' targets masked) equals its loss in a row of its own within
// 1e-4, and the whole row's loss and gradients equal those of the unpacked batch.
func TestPackedLossesMatchUnpacked(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 3, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	packedMatchesUnpacked(t, m, false)
	packedMatchesUnpacked(t, m, true)
}

// packedMatchesUnpacked is TestPackedLossesMatchUnpacked's check on model m, with each
// example's loss counted from an offset (mlx-lm's mask_prompt) or over spans of its tokens
// (every assistant turn).
func packedMatchesUnpacked(t *testing.T, m *model.Model, spans bool) {
	t.Helper()
	for _, ckpt := range []bool{false, true} {
		tr, err := NewTrainer(m, lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}, NumLayers: 2, Rank: 4, Scale: 2, Seed: 5},
			optim.DefaultConfig(), Options{GradCheckpoint: ckpt, LossChunk: 32})
		if err != nil {
			t.Fatal(err)
		}
		randomizeB(t, tr)
		rng := rand.New(rand.NewSource(8))
		var exs []example
		for _, n := range []int{23, 9, 40, 15} {
			e := example{tokens: make([]int32, n), offset: rng.Intn(n / 2)}
			for j := range e.tokens {
				e.tokens[j] = int32(1 + rng.Intn(500))
			}
			if spans { // two turns, the second reaching the end
				a := 1 + rng.Intn(n/3)
				e.spans = []data.Span{{Start: a, End: a + 1 + rng.Intn(n/3)}, {Start: n - 1 - rng.Intn(n/3), End: n}}
			}
			exs = append(exs, e)
		}
		for i, e := range exs {
			alone, err := tr.Evaluate([]Batch{plainBatch([]example{e})})
			if err != nil {
				t.Fatal(err)
			}
			masked := make([]example, len(exs))
			for j, o := range exs {
				masked[j] = o
				if j != i {
					masked[j].offset = len(o.tokens) + 1 // no target left
					if o.spans != nil {
						masked[j].spans = []data.Span{}
					}
				}
			}
			packed, err := tr.Evaluate([]Batch{packedBatch(masked, 96)})
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(packed-alone) / alone; d > 1e-4 {
				t.Errorf("checkpointing %v: example %d: loss %v packed, %v alone", ckpt, i, packed, alone)
			}
		}
		wantLoss, wantTokens, want, err := tr.Gradients(plainBatch(exs))
		if err != nil {
			t.Fatal(err)
		}
		loss, tokens, got, err := tr.Gradients(packedBatch(exs, 96))
		if err != nil {
			t.Fatal(err)
		}
		if tokens != wantTokens || math.Abs(loss-wantLoss)/wantLoss > 1e-4 {
			t.Errorf("checkpointing %v: packed loss %v over %d tokens, unpacked %v over %d", ckpt, loss, tokens, wantLoss, wantTokens)
		}
		if spans {
			checkSpansLoss(t, m, exs, loss, tokens)
		}
		for name, g := range got {
			if d := relativeToMax(g, want[name]); d > 1e-4 {
				t.Errorf("checkpointing %v: gradient of %s differs by %g packed", ckpt, name, d)
			}
		}
		freeMap(got)
		freeMap(want)
		// The compiled step runs packed batches too.
		if r, err := tr.Step(packedBatch(exs, 96)); err != nil || !r.Finite || r.Tokens != wantTokens {
			t.Errorf("checkpointing %v: packed step: %+v, %v", ckpt, r, err)
		}
		tr.Close()
	}
}

// checkSpansLoss checks a loss over the examples' spans against the cross-entropy of every
// position of the model's logits, masked by a mask built here from the spans.
func checkSpansLoss(t *testing.T, m *model.Model, exs []example, loss float64, tokens int) {
	t.Helper()
	b := plainBatch(exs)
	cols := b.Cols - 1
	mask := make([]float32, b.Rows*cols)
	want := 0
	for r, e := range exs {
		for _, s := range e.spans {
			for k := s.Start; k < s.End; k++ {
				if k >= 1 && k < len(e.tokens) {
					mask[r*cols+k-1] = 1
					want++
				}
			}
		}
	}
	if tokens != want {
		t.Errorf("the loss counts %d tokens, the spans hold %d", tokens, want)
	}
	var ref float64
	err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		all := mlx.FromSlice(b.Tokens, b.Rows, b.Cols)
		inputs, targets := splitTokens(all)
		logits := m.Forward(inputs) // the adapters are attached to m
		l, _ := MaskedLoss(logits, targets, mlx.FromSlice(mask, b.Rows, cols))
		ref = float64(l.Item())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(loss-ref) / ref; d > 1e-4 {
		t.Errorf("loss over the spans %v, masked cross-entropy of the logits %v", loss, ref)
	}
}
