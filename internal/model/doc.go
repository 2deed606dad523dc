// Package model loads and runs Llama-family language models (model_type llama, mistral and
// qwen2) stored in the Hugging Face / mlx-community layout: config.json plus one or more
// safetensors files, plain (float16, bfloat16, float32) or quantized as mlx-lm writes them.
//
// The forward pass computes exactly what mlx-lm 0.32 computes: same ops, same order, same
// dtypes, so logits agree with mlx-lm's up to floating-point noise (the tests state the
// tolerances). It is the one forward pass of training, evaluation and generation: Model.Forward
// and Block.Forward take an optional cache per block (Cache, KVCache: mlx-lm's prompt cache)
// for prefill and decoding, and Block.Forward optional packed rows (Packing) for training.
//
// A family is laid out as mlx-lm's models/<family>.py: its attention projects queries, keys
// and values and hands them to attend (rotary positions, the cache, the mask and scaled
// dot-product attention, shared by every family); its MLP, block and model compose those.
//
// Ownership: a Model owns its weights. They are loaded lazily from the files, evaluated once,
// and freed by Free; Reload swaps a chosen subset for fresh copies from the files. Everything
// a forward pass creates belongs to the caller's mlx scope; a cache owns its arrays until its
// Free. Call the model on the MLX thread (inside mlx.Do) and inside a scope, so
// intermediates are freed. The compiled activation (see swiglu) is made once per process,
// as mlx-lm's is.
package model
