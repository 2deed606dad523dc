// Package model loads and runs Llama-family language models (model_type llama, mistral and
// qwen2) stored in the Hugging Face / mlx-community layout: config.json plus one or more
// safetensors files, plain (float16, bfloat16, float32) or quantized as mlx-lm writes them.
//
// The forward pass computes exactly what mlx-lm 0.32 computes: same ops, same order, same
// dtypes, so logits agree with mlx-lm's up to floating-point noise (the tests state the
// tolerances).
//
// Ownership: a Model owns its weights. They are loaded lazily from the files, evaluated once,
// and freed by Free; Reload swaps a chosen subset for fresh copies from the files. Everything
// a forward pass creates belongs to the caller's mlx scope. Call the model on the MLX
// thread (inside mlx.Do) and inside a scope, so intermediates are freed.
package model
