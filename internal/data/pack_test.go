package data

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Packing: every example appears once per epoch, whole or cut at max_seq_length, in rows of
// at most max_seq_length tokens, at the place its segment says, with its offset; rows are
// padded to a multiple of 32; and a resumed iterator serves the same packed batches.
func TestPackFillsRowsAndResumes(t *testing.T) {
	ds := &Dataset{Path: "mem"}
	for i := range 40 {
		ex := Example{Tokens: seq(5 + (i*37)%60), Offset: i % 4}
		for j := range ex.Tokens {
			ex.Tokens[j] = int32(1000*i + j)
		}
		ds.Examples = append(ds.Examples, ex)
	}
	ds.Examples[7].Tokens = seq(150) // longer than a row: cut
	const maxSeq = 100
	cfg := func(r *NumpyRandom) BatchConfig {
		return BatchConfig{BatchSize: 2, MaxSeqLength: maxSeq, Loop: true, Pack: true, Random: r, Logger: discardLogger()}
	}
	it, err := NewBatches(ds, cfg(NewNumpyRandom(4)))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	seen := map[int]int{}
	used, capacity := 0, 0
	for range it.PerEpoch() {
		b, _ := it.Next()
		if b.Width%32 != 0 || len(b.Segments) != b.Size {
			t.Fatalf("width %d, %d rows of segments for %d rows", b.Width, len(b.Segments), b.Size)
		}
		for i, row := range b.Segments {
			at := 0
			for _, s := range row {
				ex := ds.Examples[s.Example]
				n := min(len(ex.Tokens), maxSeq)
				if s.Start != at || s.Len != n || s.Offset != ex.Offset || s.Truncated != (len(ex.Tokens) >= maxSeq) {
					t.Fatalf("segment %+v of example %d (%d tokens) at %d", s, s.Example, len(ex.Tokens), at)
				}
				if !slices.Equal(b.Row(i)[s.Start:s.Start+s.Len], ex.Tokens[:n]) {
					t.Fatalf("example %d's tokens are not where its segment says", s.Example)
				}
				seen[s.Example]++
				at += s.Len
			}
			if at > maxSeq || int(b.Lengths[i]) != at {
				t.Fatalf("row of %d tokens (length %d), max_seq_length %d", at, b.Lengths[i], maxSeq)
			}
			used += at
			capacity += b.Width
		}
	}
	// Whole packed rows are batched in pairs: only a last odd row may be left out.
	left := len(ds.Examples) - len(seen)
	if left > len(it.packs[len(it.packs)-1]) {
		t.Errorf("%d examples never served in an epoch", left)
	}
	for e, n := range seen {
		if n != 1 {
			t.Errorf("example %d served %d times in an epoch", e, n)
		}
	}
	if float64(used) < 0.8*float64(capacity) {
		t.Errorf("packed rows are %d%% full", 100*used/capacity)
	}

	for _, stop := range []int{0, 1, 5} {
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
		for range 6 {
			x, _ := a.Next()
			y, _ := b.Next()
			if !cmp.Equal(x, y) {
				t.Fatalf("after %d batches the resumed packed batch differs", stop)
			}
		}
		a.Close()
		b.Close()
	}
}
