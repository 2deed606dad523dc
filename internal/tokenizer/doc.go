// Package tokenizer loads Hugging Face tokenizers (tokenizer.json + tokenizer_config.json) and
// encodes text exactly as the Python `tokenizers` library does for the Llama family: byte-level
// BPE with the Llama-3 or GPT-2 split, SentencePiece-style BPE with Metaspace and byte fallback,
// added and special tokens, the usual normalizers, decoders and post-processors. Chat templates
// from tokenizer_config.json are rendered with a Jinja engine configured like transformers'.
//
// A Tokenizer is safe for concurrent use.
package tokenizer
