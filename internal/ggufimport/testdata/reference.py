"""Reference tokenization and chat rendering of an imported model directory.

encode DIR: reads a JSON list of texts on stdin; prints the ids HF tokenizers gives each
            (Tokenizer.from_file(DIR/tokenizer.json).encode, special tokens added).
chat DIR:   reads a JSON list of [messages, add_generation_prompt] on stdin; prints what
            transformers' apply_chat_template renders for each (tokenize=False).
argmax DIR: reads a JSON list of token ids; prints the argmax of mlx-lm's logits at each
            position, the model loaded by mlx_lm.load.
"""
import json
import os
import sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def encode(path):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    texts = json.load(sys.stdin)
    json.dump([tok.encode(t).ids for t in texts], sys.stdout)


def chat(path):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(path)
    cases = json.load(sys.stdin)
    json.dump([tok.apply_chat_template(m, tokenize=False, add_generation_prompt=g) for m, g in cases], sys.stdout)


def argmax(path):
    import mlx.core as mx
    from mlx_lm import load
    model, _ = load(path)
    ids = json.load(sys.stdin)
    json.dump(mx.argmax(model(mx.array(ids)[None])[0], axis=-1).tolist(), sys.stdout)


if __name__ == "__main__":
    {"encode": encode, "chat": chat, "argmax": argmax}[sys.argv[1]](sys.argv[2])
