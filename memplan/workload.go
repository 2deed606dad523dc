package memplan

// Workload is what the memory estimate of a training step depends on, as the recipe's stages
// declare it (each kind adds its settings as written; kinds absent from the recipe add their
// defaults). Settings that leave a choice (compute_dtype and matmul auto) stay as written:
// Decide resolves them.
type Workload struct {
	// load-4bit
	ComputeDtype string // the compute_dtype setting
	Matmul       string // the matmul setting
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

// Products says which quantized layers multiply through dequantized weights: the blocks'
// projections, the output head.
type Products struct{ Blocks, Head bool }
