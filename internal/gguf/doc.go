// Package gguf reads GGUF files (the llama.cpp model format, versions 2 and 3): header,
// metadata, tensor infos and tensor data, and dequantizes the common tensor types to float32
// exactly as the gguf Python package does. It needs no cgo.
package gguf
