package data

// lossPositionBase is the smallest number of loss positions a step is compiled for.
const lossPositionBase = 32

// LossPositions is the number of positions, n or more, the loss of a batch with n counted
// targets gathers, loss_chunk (chunk) at a time: below a chunk the count is rounded up to a
// power of two, above it to a multiple of the chunk, so a shape of tokens gives at most
// log2(chunk/32)+1 + positions/chunk distinct compiled traces. The trainer pads to it and the
// memory estimate counts it.
func LossPositions(n, chunk int) int {
	p := lossPositionBase
	for p < n && (chunk <= 0 || p < chunk) {
		p *= 2
	}
	if n <= p {
		return p
	}
	return chunk * ((n + chunk - 1) / chunk)
}
