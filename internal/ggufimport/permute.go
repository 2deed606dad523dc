package ggufimport

// unpermuteRows undoes the row order llama.cpp's converter gives q and k projections of
// Llama-family models: within each head of headDim rows it interleaves the two rotary
// halves (row h·D + 2i + j holds original row h·D + j·D/2 + i). w is row-major with rows of
// cols values; a bias is a matrix of one column.
func unpermuteRows(w []float32, rows, cols, heads int) []float32 {
	return PermuteRows(w, rows, cols, heads, true)
}

// PermuteRows gives q or k rows llama.cpp's order (undo: the order they had), as
// unpermuteRows describes it.
func PermuteRows(w []float32, rows, cols, heads int, undo bool) []float32 {
	out := make([]float32, len(w))
	headDim := rows / heads
	half := headDim / 2
	for h := range heads {
		for i := range half {
			for j := range 2 {
				interleaved := (h*headDim + 2*i + j) * cols
				halves := (h*headDim + j*half + i) * cols
				if undo {
					copy(out[halves:halves+cols], w[interleaved:interleaved+cols])
				} else {
					copy(out[interleaved:interleaved+cols], w[halves:halves+cols])
				}
			}
		}
	}
	return out
}
