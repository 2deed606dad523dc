package data

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
)

// padMultiple: mlx-lm pads each batch to one plus a multiple of 32 tokens, so that the inputs
// (all but the last column) have a multiple of 32 and compiled steps see few shapes.
const padMultiple = 32

// BatchConfig mirrors the arguments of mlx-lm's iterate_batches.
type BatchConfig struct {
	BatchSize    int
	MaxSeqLength int  // longer rows are truncated (with a warning); 0 means 2048, mlx-lm's default
	Loop         bool // start a new epoch (a new permutation) when one ends, for training
	// Random draws the batch order. nil means NewNumpyRandom(0). Share one generator between
	// the training and validation iterators to reproduce mlx-lm's order (see NumpyRandom).
	Random *NumpyRandom
	// SortByTokens sorts rows by token count before cutting batches. mlx-lm 0.32 sorts a
	// CacheDataset by the number of keys in each JSON row instead (CacheDataset.itemlen), which
	// for a uniform file keeps file order; false reproduces that.
	SortByTokens bool
	// KeepOrder serves the rows in file order, epoch after epoch: no sort, no permutation,
	// and no draw from Random.
	KeepOrder bool
	Prefetch  int          // batches built ahead of the consumer; 0 means 2
	Logger    *slog.Logger // for the truncation warning; nil means slog.Default()
}

// Batch is one padded batch, row-major: Tokens[i*Width+j] is token j of row i, zero padded.
// Offsets[i] and Lengths[i] are mlx-lm's (offset, length) pair for row i: the loss covers
// target positions offset..length-1 (1-based over inputs[:, 1:]).
type Batch struct {
	Tokens  []int32
	Size    int
	Width   int
	Offsets []int32
	Lengths []int32
}

// Row returns the padded tokens of row i.
func (b *Batch) Row(i int) []int32 { return b.Tokens[i*b.Width : (i+1)*b.Width] }

// Batches iterates over the batches of a dataset, building them on a goroutine ahead of the
// consumer. Call Close when done early.
type Batches struct {
	dataset *Dataset
	cfg     BatchConfig
	groups  [][]int // the rows of each batch, before shuffling

	started bool
	current chan Batch
	stop    chan struct{}
	wg      sync.WaitGroup
}

// NewBatches groups rows into batches as iterate_batches does: sort, cut consecutive groups of
// BatchSize (a last partial group is dropped), and shuffle the group order each epoch.
func NewBatches(ds *Dataset, cfg BatchConfig) (*Batches, error) {
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("batch size must be positive, got %d", cfg.BatchSize)
	}
	if ds.Len() < cfg.BatchSize {
		return nil, fmt.Errorf("%s: dataset must have at least batch_size=%d examples but only has %d", ds.Path, cfg.BatchSize, ds.Len())
	}
	if cfg.MaxSeqLength <= 0 {
		cfg.MaxSeqLength = 2048
	}
	if cfg.Random == nil {
		cfg.Random = NewNumpyRandom(0)
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	order := make([]int, ds.Len())
	for i := range order {
		order[i] = i
	}
	sortKey := func(i int) int { return ds.Examples[i].Keys }
	if cfg.SortByTokens {
		sortKey = func(i int) int { return len(ds.Examples[i].Tokens) }
	}
	if !cfg.KeepOrder {
		slices.SortStableFunc(order, func(a, b int) int { return sortKey(a) - sortKey(b) })
	}
	var groups [][]int
	for i := 0; i+cfg.BatchSize <= len(order); i += cfg.BatchSize {
		groups = append(groups, order[i:i+cfg.BatchSize])
	}
	return &Batches{dataset: ds, cfg: cfg, groups: groups}, nil
}

// Widest is the width of the widest batch any epoch serves (the order of batches changes
// between epochs, their rows do not): what the step's memory peaks on.
func (it *Batches) Widest() int {
	w := 0
	for _, rows := range it.groups {
		longest := 0
		for _, r := range rows {
			longest = max(longest, len(it.dataset.Examples[r].Tokens))
		}
		w = max(w, batchWidth(longest, it.cfg.MaxSeqLength))
	}
	return w
}

// batchWidth pads the longest row to one plus a multiple of 32, capped at maxSeq.
func batchWidth(longest, maxSeq int) int {
	return min(1+padMultiple*((longest+padMultiple-1)/padMultiple), maxSeq)
}

// PerEpoch is the number of batches in one pass over the data.
func (it *Batches) PerEpoch() int { return len(it.groups) }

// Next returns the next batch; false when the data is exhausted (never with Loop). The epoch's
// permutation is drawn here, on the caller's goroutine, when its first batch is asked for —
// the point where mlx-lm draws it — so a shared generator sees mlx-lm's sequence of draws.
func (it *Batches) Next() (Batch, bool) {
	for {
		if it.current != nil {
			if b, ok := <-it.current; ok {
				return b, true
			}
			it.current = nil
			if !it.cfg.Loop {
				return Batch{}, false
			}
		}
		if it.started && !it.cfg.Loop {
			return Batch{}, false
		}
		it.startEpoch()
	}
}

func (it *Batches) startEpoch() {
	it.started = true
	if it.stop == nil {
		it.stop = make(chan struct{})
	}
	var permutation []int
	if it.cfg.KeepOrder {
		permutation = make([]int, len(it.groups))
		for i := range permutation {
			permutation[i] = i
		}
	} else {
		permutation = it.cfg.Random.Permutation(len(it.groups))
	}
	out := make(chan Batch, it.cfg.Prefetch)
	it.current = out
	it.wg.Add(1)
	go func() {
		defer it.wg.Done()
		defer close(out)
		for _, g := range permutation {
			select {
			case out <- it.build(it.groups[g]):
			case <-it.stop:
				return
			}
		}
	}()
}

// Close stops the prefetching goroutine.
func (it *Batches) Close() {
	if it.stop != nil {
		close(it.stop)
		it.wg.Wait()
		it.stop = nil
	}
	it.current = nil
	it.started = true
	it.cfg.Loop = false
}

func (it *Batches) build(rows []int) Batch {
	maxSeq := it.cfg.MaxSeqLength
	longest := 0
	for _, r := range rows {
		longest = max(longest, len(it.dataset.Examples[r].Tokens))
	}
	if longest > maxSeq {
		it.cfg.Logger.Warn("some sequences are longer than max_seq_length and will be truncated; consider pre-splitting the data",
			"dataset", it.dataset.Path, "max_seq_length", maxSeq, "longest", longest)
	}
	width := batchWidth(longest, maxSeq)
	b := Batch{
		Tokens:  make([]int32, len(rows)*width),
		Size:    len(rows),
		Width:   width,
		Offsets: make([]int32, len(rows)),
		Lengths: make([]int32, len(rows)),
	}
	for i, r := range rows {
		ex := it.dataset.Examples[r]
		n := min(len(ex.Tokens), maxSeq)
		copy(b.Row(i), ex.Tokens[:n])
		b.Offsets[i] = int32(ex.Offset)
		b.Lengths[i] = int32(n)
	}
	return b
}
