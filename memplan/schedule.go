package memplan

// Schedule is how a step is computed, never what it computes. MicroBatches splits each batch
// into that many parts whose token-weighted gradients add up to the whole batch's gradient,
// so the update is the same with a fraction of the activation memory (with dropout the masks
// are drawn per part; with the prefix cache in use the batch stays whole). GradCheckpoint
// recomputes the adapted blocks in the backward pass.
type Schedule struct {
	MicroBatches   int
	GradCheckpoint bool
}
