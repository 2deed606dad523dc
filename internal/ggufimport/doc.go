// Package ggufimport turns a GGUF file (llama.cpp, Ollama, LM Studio) of a Llama, Mistral
// (which llama.cpp stores as architecture llama) or Qwen2 model into an mlx-community model directory: config.json from the metadata,
// weights dequantized and re-quantized to MLX's affine format (or kept float),
// tokenizer.json and tokenizer_config.json rebuilt from the GGUF vocabulary.
package ggufimport
