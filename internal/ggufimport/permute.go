package ggufimport

// unpermuteRows undoes the row order llama.cpp's converter gives q and k projections of
// Llama-family models: within each head of headDim rows it interleaves the two rotary
// halves (row h·D + 2i + j holds original row h·D + j·D/2 + i). w is row-major with rows of
// cols values; a bias is a matrix of one column.
func unpermuteRows(w []float32, rows, cols, heads int) []float32 {
	out := make([]float32, len(w))
	headDim := rows / heads
	half := headDim / 2
	for h := range heads {
		for i := range half {
			for j := range 2 {
				src := (h*headDim + 2*i + j) * cols
				dst := (h*headDim + j*half + i) * cols
				copy(out[dst:dst+cols], w[src:src+cols])
			}
		}
	}
	return out
}
