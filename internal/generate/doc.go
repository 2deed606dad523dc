// Package generate decodes text from a Llama-family model: a key/value cache so each new
// token costs one position, greedy and temperature / top-p / top-k / min-p sampling, stop
// tokens, streaming detokenization and a chat session over the model's chat template.
//
// It computes what mlx-lm 0.32's generate_step computes (same cache layout, same prefill
// split, same ops in the same order), so greedy decoding gives mlx_lm.generate's tokens. The
// forward pass and the cache are package model's; this package drives them.
//
// Ownership: everything a step creates lives in a scope closed at the end of the step. Only
// the caches and the sampler's key outlive a step, and Generate frees them before it returns.
package generate
