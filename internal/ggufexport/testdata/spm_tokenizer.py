"""SentencePiece tokenizers for the export's tokenizer check.

spm_tokenizer.py make OUT gemma|llama
    Writes a small SentencePiece BPE tokenizer (tokenizer.json, tokenizer_config.json, no
    tokenizer.model) as transformers converts one: the ggufimport test's, Gemma's or Llama 2's
    settings. Prints its vocabulary size.
spm_tokenizer.py encode DIR
    Encodes stdin's JSON list of texts with DIR/tokenizer.json (Hugging Face tokenizers, no
    special tokens added) and prints the JSON list of id lists.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    cmd, out = sys.argv[1], sys.argv[2]
    if cmd == "make":
        sys.path.insert(0, os.path.join(HERE, "..", "..", "ggufimport", "testdata"))
        import converted
        n = converted.spm_tokenizer(out, sys.argv[3] == "gemma")
        # Only what Hugging Face's fast tokenizer runs: the export works from tokenizer.json.
        for name in ("tokenizer.model", "special_tokens_map.json"):
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
        print(n)
    elif cmd == "encode":
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
        texts = json.load(sys.stdin)
        print(json.dumps([tok.encode(t, add_special_tokens=False).ids for t in texts]))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
