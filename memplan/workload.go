package memplan

// Workload is what the memory estimate of a training step depends on, as the recipe's stages
// declare it (each kind adds its settings as written; kinds absent from the recipe add their
// defaults). Settings that leave a choice (compute_dtype and matmul auto) stay as written:
// Decide resolves them.
type Workload struct {
	// load-4bit
	ComputeDtype string // the compute_dtype setting
	Matmul       string // the matmul setting
	// SequenceChunks is the sequence_chunks setting: "off" computes whole rows.
	SequenceChunks string
	// attach-lora
	Rank   int
	Layers int
	Keys   []string
	// data
	BatchSize    int
	MaxSeqLength int
	Pack         bool
	// Targets is the most positions one batch's loss counts, read from the data (masked
	// prompts and turns are not counted); 0 counts every position.
	Targets int
	// step
	Optimizer      string
	Accumulation   int
	GradCheckpoint bool
	LossChunk      int
	PrefixCache    int64
}

// Products says which quantized layers multiply through dequantized weights: every block's
// projections, the output head, or only the projections of the frozen blocks below the
// first adapted one (Frozen), which need no backward, so that each copy lives for its one
// product.
type Products struct{ Blocks, Head, Frozen bool }

// DenseBlocks is how many leading blocks of a model of layers blocks, adapted adapted,
// multiply through dequantized weights.
func (p Products) DenseBlocks(layers, adapted int) int {
	switch {
	case p.Blocks:
		return layers
	case p.Frozen:
		return max(0, layers-adapted)
	}
	return 0
}
