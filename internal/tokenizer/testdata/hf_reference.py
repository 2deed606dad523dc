"""Reference side of the live tokenizer tests and of BenchmarkEncode, run with the venv python.

    hf_reference.py encode DIR      stdin: JSON list of texts; stdout: JSON list of id lists
                                    (add_special_tokens=False then True for each text)
    hf_reference.py bench DIR FILE  encodes each text of FILE (a JSON list) per round; prints
                                    {"tokens_per_second": …, "tokens": …}
"""

import json
import sys
import time

from tokenizers import Tokenizer


def main():
    mode, directory = sys.argv[1], sys.argv[2]
    tok = Tokenizer.from_file(f"{directory}/tokenizer.json")
    if mode == "encode":
        texts = json.load(sys.stdin)
        out = []
        for text in texts:
            out.append(tok.encode(text, add_special_tokens=False).ids)
            out.append(tok.encode(text, add_special_tokens=True).ids)
        json.dump(out, sys.stdout)
    elif mode == "bench":
        with open(sys.argv[3], encoding="utf-8") as f:
            lines = json.load(f)
        rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
        best = None
        tokens = 0
        for _ in range(rounds):
            # A fresh tokenizer per round, so the word cache starts empty as in the Go side.
            fresh = Tokenizer.from_file(f"{directory}/tokenizer.json")
            start = time.perf_counter()
            tokens = sum(len(fresh.encode(line, add_special_tokens=False).ids) for line in lines)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        json.dump({"tokens_per_second": tokens / best, "tokens": tokens}, sys.stdout)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
