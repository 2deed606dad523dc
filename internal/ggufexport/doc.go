// Package ggufexport writes what llama.cpp, Ollama and LM Studio load: a merged GGUF model
// (F16, Q8_0, Q4_0, …) from a model directory and its adapters, a GGUF LoRA adapter to load
// beside a base GGUF, and an Ollama Modelfile. It is ggufimport the other way: the same
// tensor names, the same q/k row order, the same tokenizer keys.
package ggufexport
