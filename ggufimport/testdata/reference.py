"""Reference tokenization and chat rendering of an imported model directory.

encode DIR: reads a JSON list of texts on stdin; prints the ids HF tokenizers gives each
            (Tokenizer.from_file(DIR/tokenizer.json).encode, special tokens added).
chat DIR:   reads a JSON list of [messages, add_generation_prompt] on stdin; prints what
            transformers' apply_chat_template renders for each (tokenize=False).
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


if __name__ == "__main__":
    {"encode": encode, "chat": chat}[sys.argv[1]](sys.argv[2])
