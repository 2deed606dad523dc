package data

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
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
	// Pack puts examples one after another into rows of up to MaxSeqLength tokens (in the
	// order they would be batched), and batches BatchSize such rows: no compute goes to
	// padding. Each row lists its examples in Batch.Segments.
	Pack     bool
	Prefetch int          // batches built ahead of the consumer; 0 means 2
	Logger   *slog.Logger // for the truncation warning; nil means slog.Default()
}

// Batch is one padded batch, row-major: Tokens[i*Width+j] is token j of row i, zero padded.
// Offsets[i] and Lengths[i] are mlx-lm's (offset, length) pair for row i: the loss covers
// target positions offset..length-1 (1-based over inputs[:, 1:]).
type Batch struct {
	Examples []int // the dataset rows of the batch (row i of the file is line i+1)
	Tokens   []int32
	Size     int
	Width    int
	Offsets  []int32
	Lengths  []int32
	// Spans, when the examples have them (TrainAssistant), are each row's trained token
	// ranges, which replace Offsets; nil otherwise.
	Spans [][]Span
	// Segments are the examples of each packed row (nil unless BatchConfig.Pack); Offsets
	// are then zero and Lengths the tokens used in each row.
	Segments [][]Segment
}

// Segment is one example of a packed row: dataset row Example, at Tokens[Start:Start+Len]
// of the batch row, with prompt offset Offset or trained Spans (of the example's tokens).
// Truncated is set when the example fills MaxSeqLength (cut or not): an unpacked batch then
// has no padding step after it to predict.
type Segment struct {
	Example, Start, Len, Offset int
	Spans                       []Span
	Truncated                   bool
}

// Row returns the padded tokens of row i.
func (b *Batch) Row(i int) []int32 { return b.Tokens[i*b.Width : (i+1)*b.Width] }

// Batches iterates over the batches of a dataset, building them on a goroutine ahead of the
// consumer. Call Close when done early.
type Batches struct {
	dataset *Dataset
	cfg     BatchConfig
	groups  [][]int // the rows of each batch (packed rows with Pack), before shuffling
	packs   [][]int // with Pack, the dataset rows of each packed row

	started bool
	current chan Batch
	stop    chan struct{}
	wg      sync.WaitGroup

	peeked *Batch // received by Peek, served by the next Next

	// truncationSaid: the truncation warning was logged (once per iterator: the data stage
	// and the dry run list the long rows; a warning per batch only floods the log).
	truncationSaid atomic.Bool

	// where the consumer stands, for Position
	epoch  int
	perm   []int
	served int
}

// Position is where an iterator stands: the epoch, its group order and how many of its
// batches were served. With the generator's state it continues the iteration exactly.
type Position struct {
	Started     bool  `json:"started"`
	Epoch       int   `json:"epoch"`
	Permutation []int `json:"permutation"`
	Served      int   `json:"served"`
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
	it := &Batches{dataset: ds, cfg: cfg}
	units := order
	if cfg.Pack {
		it.packs = pack(ds, order, cfg.MaxSeqLength)
		units = make([]int, len(it.packs))
		for i := range units {
			units[i] = i
		}
		if len(units) < cfg.BatchSize {
			return nil, fmt.Errorf("%s: packing gives %d rows of up to %d tokens, fewer than batch_size=%d", ds.Path, len(units), cfg.MaxSeqLength, cfg.BatchSize)
		}
	}
	for i := 0; i+cfg.BatchSize <= len(units); i += cfg.BatchSize {
		it.groups = append(it.groups, units[i:i+cfg.BatchSize])
	}
	return it, nil
}

// pack fills rows of up to maxSeq tokens with the examples in order: each goes into the
// first of the last packWindow rows with room for it, else starts a new row; an example
// longer than maxSeq is cut to a row of its own. The rows depend only on the data and
// settings, so a position in them resumes exactly.
func pack(ds *Dataset, order []int, maxSeq int) [][]int {
	const packWindow = 64
	var rows [][]int
	var used []int
	for _, e := range order {
		n := min(len(ds.Examples[e].Tokens), maxSeq)
		at := -1
		for r := max(0, len(rows)-packWindow); r < len(rows); r++ {
			if used[r]+n <= maxSeq {
				at = r
				break
			}
		}
		if at < 0 {
			rows, used = append(rows, nil), append(used, 0)
			at = len(rows) - 1
		}
		rows[at] = append(rows[at], e)
		used[at] += n
	}
	return rows
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

// MostTargets is the most targets the loss counts in one batch any epoch serves (unpacked
// batches): the positions the head and the loss run on.
func (it *Batches) MostTargets() int {
	most := 0
	for _, rows := range it.groups {
		n := 0
		for _, r := range rows {
			if it.packs != nil {
				for _, e := range it.packs[r] {
					n += it.dataset.Examples[e].Targets(it.cfg.MaxSeqLength)
				}
				continue
			}
			n += it.dataset.Examples[r].Targets(it.cfg.MaxSeqLength)
		}
		most = max(most, n)
	}
	return most
}

// PerEpoch is the number of batches in one pass over the data.
func (it *Batches) PerEpoch() int { return len(it.groups) }

// Next returns the next batch; false when the data is exhausted (never with Loop). The epoch's
// permutation is drawn here, on the caller's goroutine, when its first batch is asked for —
// the point where mlx-lm draws it — so a shared generator sees mlx-lm's sequence of draws.
func (it *Batches) Next() (Batch, bool) {
	if b := it.peeked; b != nil {
		it.peeked = nil
		it.served++
		return *b, true
	}
	for {
		if it.current != nil {
			if b, ok := <-it.current; ok {
				it.served++
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
	var permutation []int
	if it.cfg.KeepOrder {
		permutation = make([]int, len(it.groups))
		for i := range permutation {
			permutation[i] = i
		}
	} else {
		permutation = it.cfg.Random.Permutation(len(it.groups))
	}
	if it.started {
		it.epoch++
	}
	it.serve(permutation, 0)
}

// serve starts the goroutine that builds the batches of permutation from its from-th on.
func (it *Batches) serve(permutation []int, from int) {
	it.started = true
	if it.stop == nil {
		it.stop = make(chan struct{})
	}
	it.perm, it.served = permutation, from
	out := make(chan Batch, it.cfg.Prefetch)
	it.current = out
	it.wg.Add(1)
	go func() {
		defer it.wg.Done()
		defer close(out)
		for _, g := range permutation[from:] {
			select {
			case out <- it.build(it.groups[g]):
			case <-it.stop:
				return
			}
		}
	}()
}

// Peek returns the batch Next will return, without taking it. At the end of an epoch it
// reports false rather than start the next one: that draws the next permutation, which must
// happen when mlx-lm's order says.
func (it *Batches) Peek() (Batch, bool) {
	if it.peeked != nil {
		return *it.peeked, true
	}
	if it.current == nil {
		return Batch{}, false
	}
	b, ok := <-it.current
	if !ok {
		it.current = nil
		return Batch{}, false
	}
	it.peeked = &b
	return b, true
}

// Position says where the consumer stands.
func (it *Batches) Position() Position {
	if !it.started {
		return Position{}
	}
	return Position{Started: true, Epoch: it.epoch, Permutation: slices.Clone(it.perm), Served: it.served}
}

// Seek continues from a Position of an iterator over the same data and settings: the next
// batch is the one that iterator would have served next. The generator is not touched;
// restore its state separately.
func (it *Batches) Seek(p Position) error {
	if !p.Started {
		return nil
	}
	n := len(it.groups)
	if len(p.Permutation) != n || p.Served < 0 || p.Served > n {
		return fmt.Errorf("data position does not fit this dataset: %d batches per epoch, position has %d (served %d)", n, len(p.Permutation), p.Served)
	}
	seen := make([]bool, n)
	for _, g := range p.Permutation {
		if g < 0 || g >= n || seen[g] {
			return fmt.Errorf("data position holds no permutation of %d batches", n)
		}
		seen[g] = true
	}
	it.halt()
	it.epoch = p.Epoch
	it.serve(slices.Clone(p.Permutation), p.Served)
	return nil
}

// halt stops the prefetching goroutine and drops what it built.
func (it *Batches) halt() {
	it.peeked = nil
	if it.stop != nil {
		close(it.stop)
		it.wg.Wait()
		it.stop = nil
	}
	it.current = nil
}

// Close stops the prefetching goroutine.
func (it *Batches) Close() {
	it.halt()
	it.started = true
	it.cfg.Loop = false
}

func (it *Batches) build(rows []int) Batch {
	if it.packs != nil {
		return it.buildPacked(rows)
	}
	maxSeq := it.cfg.MaxSeqLength
	longest := 0
	for _, r := range rows {
		longest = max(longest, len(it.dataset.Examples[r].Tokens))
	}
	if longest > maxSeq && !it.truncationSaid.Swap(true) {
		it.cfg.Logger.Warn("some sequences are longer than max_seq_length and will be truncated; consider pre-splitting the data (said for the first such batch only)",
			"dataset", it.dataset.Path, "max_seq_length", maxSeq, "longest", longest)
	}
	width := batchWidth(longest, maxSeq)
	b := Batch{
		Examples: slices.Clone(rows),
		Tokens:   make([]int32, len(rows)*width),
		Size:     len(rows),
		Width:    width,
		Offsets:  make([]int32, len(rows)),
		Lengths:  make([]int32, len(rows)),
	}
	for i, r := range rows {
		ex := it.dataset.Examples[r]
		n := min(len(ex.Tokens), maxSeq)
		copy(b.Row(i), ex.Tokens[:n])
		b.Offsets[i] = int32(ex.Offset)
		b.Lengths[i] = int32(n)
		if ex.Spans != nil {
			if b.Spans == nil {
				b.Spans = make([][]Span, len(rows))
			}
			b.Spans[i] = ex.Spans
		}
	}
	return b
}

// buildPacked builds a batch of packed rows (indices into it.packs), padded to a multiple of
// 32 tokens.
func (it *Batches) buildPacked(rows []int) Batch {
	maxSeq := it.cfg.MaxSeqLength
	longest := 0
	for _, r := range rows {
		n := 0
		for _, e := range it.packs[r] {
			n += min(len(it.dataset.Examples[e].Tokens), maxSeq)
		}
		longest = max(longest, n)
	}
	width := padMultiple * ((longest + padMultiple - 1) / padMultiple)
	b := Batch{
		Tokens:   make([]int32, len(rows)*width),
		Size:     len(rows),
		Width:    width,
		Offsets:  make([]int32, len(rows)),
		Lengths:  make([]int32, len(rows)),
		Segments: make([][]Segment, len(rows)),
	}
	for i, r := range rows {
		at := 0
		for _, e := range it.packs[r] {
			ex := it.dataset.Examples[e]
			n := min(len(ex.Tokens), maxSeq)
			if len(ex.Tokens) > maxSeq && !it.truncationSaid.Swap(true) {
				it.cfg.Logger.Warn("a sequence is longer than max_seq_length and will be truncated; consider pre-splitting the data (said for the first such batch only)",
					"dataset", it.dataset.Path, "max_seq_length", maxSeq, "longest", len(ex.Tokens))
			}
			copy(b.Row(i)[at:], ex.Tokens[:n])
			b.Segments[i] = append(b.Segments[i], Segment{Example: e, Start: at, Len: n, Offset: ex.Offset, Spans: ex.Spans, Truncated: len(ex.Tokens) >= maxSeq})
			b.Examples = append(b.Examples, e)
			at += n
		}
		b.Lengths[i] = int32(at)
	}
	return b
}
