"""Tiny random Hugging Face models of each family, converted to GGUF by llama.cpp's own
convert_hf_to_gguf.py, and compared with mlx-lm after yai imports them.

converted.py make FAMILY HFDIR VOCABDIR
    Writes a tiny random model of FAMILY (qwen3, qwen3_moe, gemma2, gemma3, phi3, mixtral)
    with transformers' save_pretrained, float32, and a tokenizer: Qwen's real byte-level BPE
    (rebuilt from llama.cpp's models/ggml-vocab-qwen2.gguf in VOCABDIR) or a small
    SentencePiece model trained here with the family's settings (Gemma: no dummy prefix,
    <start_of_turn>; Llama/Phi-3/Mixtral: dummy prefix).
converted.py compare HFDIR OUTDIR...
    Loads the directories with mlx_lm.load and prints a JSON list, one entry per OUTDIR: the
    largest logit difference from HFDIR's over a prompt, both models' greedy continuations,
    and the texts of stdin's JSON list that the imported tokenizer.json (HF tokenizers)
    encodes differently from the original tokenizer (transformers' AutoTokenizer).
"""
import json
import os
import sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
HERE = os.path.dirname(os.path.abspath(__file__))

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-6)


def corpus_text():
    with open(os.path.join(HERE, "multilingual.txt"), encoding="utf-8") as f:
        return f.read().splitlines()


def qwen_tokenizer(out, vocabdir):
    """Qwen2's tokenizer (vocab.json, merges.txt) from llama.cpp's vocab-only GGUF."""
    import gguf
    from transformers import Qwen2Tokenizer
    r = gguf.GGUFReader(os.path.join(vocabdir, "ggml-vocab-qwen2.gguf"))

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    tokens = strings("tokenizer.ggml.tokens")
    merges = strings("tokenizer.ggml.merges")
    types = [int(r.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in r.fields["tokenizer.ggml.token_type"].data]
    vocab = {t: i for i, t in enumerate(tokens) if types[i] == 1}
    # The control tokens follow the vocabulary in id order; the rest are llama.cpp's padding.
    specials = [t for i, t in enumerate(tokens) if types[i] == 3]
    tok = Qwen2Tokenizer(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges], unk_token=None, bos_token=None, eos_token=None, pad_token=None)
    tok.add_special_tokens({"additional_special_tokens": specials})
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.chat_template = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    tok.save_pretrained(out)
    added_tokens_decoder(out)
    return len(tokens)  # the embedding's rows, as Qwen's are padded


def spm_tokenizer(out, gemma):
    """A small SentencePiece BPE model trained on the test corpus, as tokenizer.model."""
    import sentencepiece as spm
    lines = corpus_text()
    kwargs = dict(sentence_iterator=iter(lines * 4), model_prefix=os.path.join(out, "tokenizer"), model_type="bpe",
                  vocab_size=1000, byte_fallback=True, character_coverage=1.0, split_digits=True,
                  minloglevel=2, hard_vocab_limit=False, normalization_rule_name="identity")
    if gemma:
        kwargs.update(pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
                      bos_piece="<bos>", unk_piece="<unk>", add_dummy_prefix=False, remove_extra_whitespaces=False,
                      allow_whitespace_only_pieces=True, user_defined_symbols=["<start_of_turn>", "<end_of_turn>"])
    else:
        # As Llama 2's, Mistral's and Phi-3's tokenizer.model: a dummy prefix, spaces kept.
        kwargs.update(unk_id=0, bos_id=1, eos_id=2, pad_id=-1, remove_extra_whitespaces=False)
    spm.SentencePieceTrainer.train(**kwargs)
    os.remove(os.path.join(out, "tokenizer.vocab"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "tokenizer.model"))
    # As a Hub repository has it: transformers builds tokenizer.json from tokenizer.model.
    from transformers import AutoTokenizer
    if gemma:
        cfg = dict(tokenizer_class="GemmaTokenizer", bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                   unk_token="<unk>", add_bos_token=True, add_eos_token=False)
    else:
        cfg = dict(tokenizer_class="LlamaTokenizer", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                   add_bos_token=True, add_eos_token=False, legacy=True)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f)
    tok = AutoTokenizer.from_pretrained(out)
    if gemma:
        tok.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
        tok.chat_template = "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    tok.save_pretrained(out)
    added_tokens_decoder(out)
    return sp.get_piece_size()


def added_tokens_decoder(out):
    """Hub repositories saved by transformers 4 list the added tokens in tokenizer_config.json,
    where llama.cpp's converter reads their types; transformers 5 no longer writes them."""
    with open(os.path.join(out, "tokenizer.json"), encoding="utf-8") as f:
        added = json.load(f)["added_tokens"]
    path = os.path.join(out, "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["added_tokens_decoder"] = {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)


def make(family, out, vocabdir):
    import torch
    import transformers as tf
    torch.manual_seed(0)
    os.makedirs(out, exist_ok=True)
    if family in ("qwen3", "qwen3_moe"):
        vocab = qwen_tokenizer(out, vocabdir)
    else:
        vocab = spm_tokenizer(out, gemma=family.startswith("gemma"))
    small = dict(SMALL, vocab_size=vocab)
    if family == "qwen3":
        cfg = tf.Qwen3Config(**small, head_dim=16, tie_word_embeddings=True, rope_theta=1e6)
        model = tf.Qwen3ForCausalLM(cfg)
    elif family == "qwen3_moe":
        cfg = tf.Qwen3MoeConfig(**small, head_dim=16, tie_word_embeddings=True, num_experts=4, num_experts_per_tok=2,
                                moe_intermediate_size=32, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[])
        model = tf.Qwen3MoeForCausalLM(cfg)
    elif family == "gemma2":
        cfg = tf.Gemma2Config(**small, head_dim=16, query_pre_attn_scalar=16, sliding_window=512,
                              pad_token_id=0, eos_token_id=1, bos_token_id=2)
        model = tf.Gemma2ForCausalLM(cfg)
    elif family == "gemma3":
        # Six layers: mlx-lm's gemma3_text needs one full period of five sliding layers and a
        # global one.
        cfg = tf.Gemma3TextConfig(**dict(small, num_hidden_layers=6), head_dim=16, query_pre_attn_scalar=16, sliding_window=512,
                                  pad_token_id=0, eos_token_id=1, bos_token_id=2)
        model = tf.Gemma3ForCausalLM(cfg)
    elif family == "phi3":
        cfg = tf.Phi3Config(**small, original_max_position_embeddings=2048, pad_token_id=None,
                            bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
        model = tf.Phi3ForCausalLM(cfg)
    elif family == "mixtral":
        cfg = tf.MixtralConfig(**small, num_local_experts=4, num_experts_per_tok=2, tie_word_embeddings=False)
        model = tf.MixtralForCausalLM(cfg)
    else:
        raise SystemExit(f"unknown family {family}")
    with torch.no_grad():
        # Random norms (around 1) and larger weights than the init, so that every tensor
        # matters and the logits are not near-ties.
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                base = 0.0 if family.startswith("gemma") else 1.0
                p.copy_(base + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    model = model.to(torch.float32)
    model.save_pretrained(out)
    legacy_experts(out, family)


def legacy_experts(out, family):
    """Hub checkpoints of Mixtral and Qwen3-MoE hold one tensor per expert; transformers 5
    saves them fused. Write them as the Hub has them, which both converters read."""
    if family not in ("mixtral", "qwen3_moe"):
        return
    from safetensors.numpy import load_file, save_file
    path = os.path.join(out, "model.safetensors")
    w = load_file(path)
    fixed = {}
    for name, t in w.items():
        if name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"):
            prefix = name.rsplit(".", 1)[0]  # model.layers.N.mlp.experts
            if family == "mixtral":
                prefix = prefix.replace(".mlp.experts", ".block_sparse_moe.experts")
            for e in range(t.shape[0]):
                if name.endswith("gate_up_proj"):
                    ff = t.shape[1] // 2
                    parts = {"gate_proj": t[e, :ff], "up_proj": t[e, ff:]}
                else:
                    parts = {"down_proj": t[e]}
                for n, v in parts.items():
                    if family == "mixtral":
                        n = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}[n]
                    fixed[f"{prefix}.{e}.{n}.weight"] = v.copy()
        elif family == "mixtral" and ".mlp.gate." in name:
            fixed[name.replace(".mlp.gate.", ".block_sparse_moe.gate.")] = t
        else:
            fixed[name] = t
    save_file(fixed, path, metadata={"format": "pt"})
    if family == "qwen3_moe":
        # Qwen3-30B-A3B's config.json names these as transformers 4 did (mlx-lm reads them).
        cpath = os.path.join(out, "config.json")
        with open(cpath) as f:
            cfg = json.load(f)
        cfg["num_experts"] = cfg["num_local_experts"]
        cfg["rope_theta"] = cfg["rope_parameters"]["rope_theta"]
        with open(cpath, "w") as f:
            json.dump(cfg, f, indent=2)


def compare(hfdir, outdirs):
    import mlx.core as mx
    import numpy as np
    from mlx_lm import load
    from mlx_lm.generate import generate_step
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    texts = json.load(sys.stdin)
    ref_tok = AutoTokenizer.from_pretrained(hfdir)
    encode = lambda t: ref_tok(t)["input_ids"]  # noqa: E731
    if os.path.exists(os.path.join(hfdir, "tokenizer.model")):
        # A SentencePiece model is its own reference: transformers 5 builds a tokenizer from
        # it that drops the dummy prefix before leading spaces, which SentencePiece (and
        # llama.cpp, and the tokenizer.json of Hub repositories) keep.
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=os.path.join(hfdir, "tokenizer.model"))
        encode = lambda t: [sp.bos_id()] + sp.encode(t)  # noqa: E731
    ids = ref_tok("The quick brown fox jumps over the lazy dog. Über den Wolken")["input_ids"]

    def run(d):
        model, _ = load(d)
        logits = np.array(model(mx.array(ids)[None])[0].astype(mx.float32))
        greedy = [int(t) for (t, _), _ in zip(generate_step(mx.array(ids), model, max_tokens=12), range(12))]
        return logits, greedy
    ref_logits, ref_greedy = run(hfdir)
    results = []
    for outdir in outdirs:
        imp_tok = Tokenizer.from_file(os.path.join(outdir, "tokenizer.json"))
        mismatches = []
        for t in texts:
            a, b = encode(t), imp_tok.encode(t).ids
            if a != b:
                mismatches.append({"text": t, "reference": a, "import": b})
        logits, greedy = run(outdir)
        results.append({
            "tokenizer_mismatches": mismatches[:3], "mismatch_count": len(mismatches),
            "max_logit_diff": float(np.abs(ref_logits - logits).max()), "logit_scale": float(np.abs(ref_logits).max()),
            "argmax_reference": ref_logits.argmax(-1).tolist(), "argmax_import": logits.argmax(-1).tolist(),
            "greedy_reference": ref_greedy, "greedy_import": greedy,
        })
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        compare(sys.argv[2], sys.argv[3:])
