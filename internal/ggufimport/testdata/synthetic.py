"""Writes a small random Llama or Qwen2 model as GGUF the way llama.cpp's converter does
(gguf.GGUFWriter, q/k rows permuted for Llama as convert_hf_to_gguf.py's LlamaModel.permute),
and the Hugging Face-layout weights it came from as reference.safetensors.

synthetic.py KIND OUT [--hidden N] [--qtype T] [--mlp-qtype T] [--drop PREFIX]
    KIND: llama | qwen2 | mistral: architecture llama with a SentencePiece vocabulary, as
    llama.cpp converts Mistral 7B | llama3: llama with Llama 3.1 rope scaling stored as
    rope_freqs.
    --hidden: the hidden size (64).
    --qtype: the GGML type of every 2-D weight (F32); --mlp-qtype: of the MLP weights (the
    same). Types the gguf package can quantize are quantized, and the reference holds their
    dequantization; F64 is written as such; any other type as random blocks.
    --drop: leave out the GGUF tensors whose name starts with PREFIX.
"""
import argparse
import os

import numpy as np
import gguf
from safetensors.numpy import save_file


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def permute(weights, n_head, n_head_kv):
    # convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def spm_vocab():
    pieces = ["▁", "t", "h", "e", "a", "i", "n", "r", "g", "▁t", "he", "▁the", "▁a", "in", "er", "▁he", "at", "▁g"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + pieces
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + \
        [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (3 + 256) + [-float(i) for i in range(len(pieces))]
    return tokens, types, scores


def llama3_rope_factors(base, dim, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, old_context_len=8192):
    # convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors (in numpy float32)
    import math
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            out.append(1)
        elif wavelen > low_freq_wavelen:
            out.append(factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def encode(rng, data, qtype):
    """The GGUF data of a float32 tensor stored as qtype, and the values it holds."""
    if qtype == gguf.GGMLQuantizationType.F32:
        return data, data
    if qtype == gguf.GGMLQuantizationType.F64:
        return data.astype(np.float64), data
    try:
        q = gguf.quants.quantize(data, qtype)
    except NotImplementedError:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        q = rng.integers(0, 256, size=(data.shape[0], data.shape[1] // block * size), dtype=np.uint8)
        return q, None
    return q, gguf.quants.dequantize(q, qtype)


def main(kind, out, hidden=64, qtype="F32", mlp_qtype=None, drop=None):
    arch = "qwen2" if kind == "qwen2" else "llama"
    rng = np.random.default_rng(7)
    inter, layers, heads, kv = 128, 2, 4, 2
    head_dim = hidden // heads
    tied = arch == "qwen2"
    byte_chars = bytes_to_unicode()
    tokens = [byte_chars[b] for b in range(256)]
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r"]
    tokens += ["Ġt", "he", "Ġthe", "in", "Ġa", "er"]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens += specials
    types = [gguf.TokenType.NORMAL] * (len(tokens) - len(specials)) + [gguf.TokenType.CONTROL] * len(specials)
    if kind == "mistral":
        tokens, types, scores = spm_vocab()
    vocab = len(tokens)

    def rand(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    hf = {"model.embed_tokens.weight": rand(vocab, hidden), "model.norm.weight": 1 + rand(hidden)}
    if not tied:
        hf["lm_head.weight"] = rand(vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        hf[p + "self_attn.q_proj.weight"] = rand(heads * head_dim, hidden)
        hf[p + "self_attn.k_proj.weight"] = rand(kv * head_dim, hidden)
        hf[p + "self_attn.v_proj.weight"] = rand(kv * head_dim, hidden)
        hf[p + "self_attn.o_proj.weight"] = rand(hidden, heads * head_dim)
        hf[p + "mlp.gate_proj.weight"] = rand(inter, hidden)
        hf[p + "mlp.up_proj.weight"] = rand(inter, hidden)
        hf[p + "mlp.down_proj.weight"] = rand(hidden, inter)
        hf[p + "input_layernorm.weight"] = 1 + rand(hidden)
        hf[p + "post_attention_layernorm.weight"] = 1 + rand(hidden)
        if arch == "qwen2":
            for proj, n in (("q", heads), ("k", kv), ("v", kv)):
                hf[p + f"self_attn.{proj}_proj.bias"] = rand(n * head_dim)

    names = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    block = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}

    w = gguf.GGUFWriter(os.path.join(out, "model.gguf"), arch)
    w.add_block_count(layers)
    w.add_context_length(2048)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(500000.0)
    if kind == "mistral":
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_scores(scores)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
    else:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("llama-bpe" if arch == "llama" else "qwen2")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(len(tokens) - 2)
        w.add_eos_token_id(len(tokens) - 1)
    w.add_add_bos_token(arch == "llama")
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")
    for name, data in hf.items():
        t = gguf.GGMLQuantizationType[mlp_qtype if mlp_qtype and ".mlp." in name else qtype]
        stored = data
        if data.ndim == 2 and t != gguf.GGMLQuantizationType.F32:
            stored, hf[name] = encode(rng, data, t)
        base, suffix = name.rsplit(".", 1)
        if base in names:
            g = names[base]
        else:
            _, _, i, rest = base.split(".", 3)
            g = f"blk.{i}.{block[rest]}"
        if drop and g.startswith(drop):
            continue
        # Quantization works on blocks of a row, so permuting rows commutes with it.
        if arch == "llama" and base.endswith("q_proj"):
            stored = permute(stored, heads, heads)
        if arch == "llama" and base.endswith("k_proj"):
            stored = permute(stored, heads, kv)
        raw_dtype = None if t in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F64) or data.ndim != 2 else t
        w.add_tensor(f"{g}.{suffix}", np.ascontiguousarray(stored), raw_dtype=raw_dtype)
    if kind == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(500000.0, head_dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    hf = {k: v for k, v in hf.items() if v is not None}  # random blocks have no reference
    save_file(hf, os.path.join(out, "reference.safetensors"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("kind")
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--qtype", default="F32")
    ap.add_argument("--mlp-qtype")
    ap.add_argument("--drop")
    a = ap.parse_args()
    main(a.kind, a.out, a.hidden, a.qtype, a.mlp_qtype, a.drop)
