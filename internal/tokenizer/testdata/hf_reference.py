"""Reference side of the live tokenizer tests and of BenchmarkEncode, run with the venv python.

    hf_reference.py encode DIR      stdin: JSON list of texts; stdout: JSON list of id lists
                                    (add_special_tokens=False then True for each text)
    hf_reference.py bench DIR FILE  encodes each text of FILE (a JSON list) per round; prints
                                    {"tokens_per_second": …, "tokens": …}
    hf_reference.py jinja           stdin: {"templates": [...], "vars": {...}}; renders each template
                                    in transformers' chat-template environment with vars; stdout: a
                                    JSON list of {"text": …} or {"error": …}
    hf_reference.py chat DIR        stdin: JSON list of {"messages", "add_generation_prompt"};
                                    stdout: a JSON list of {"text", "ids"} from apply_chat_template
                                    of DIR's PreTrainedTokenizerFast
"""

import json
import sys
import time

from tokenizers import Tokenizer


def main():
    mode = sys.argv[1]
    directory = sys.argv[2] if len(sys.argv) > 2 else None
    if mode == "encode":
        tok = Tokenizer.from_file(f"{directory}/tokenizer.json")
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
    elif mode == "jinja":
        # transformers' own environment: ImmutableSandboxedEnvironment(trim_blocks=True,
        # lstrip_blocks=True) with its tojson, raise_exception and strftime_now.
        from transformers.utils.chat_template_utils import _compile_jinja_template

        job = json.load(sys.stdin)
        out = []
        for source in job["templates"]:
            try:
                out.append({"text": _compile_jinja_template(source).render(**job["vars"])})
            except Exception as e:  # a template Jinja refuses is a result to compare
                out.append({"error": f"{type(e).__name__}: {e}"})
        json.dump(out, sys.stdout)
    elif mode == "chat":
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast.from_pretrained(directory)
        out = []
        for case in json.load(sys.stdin):
            text = tok.apply_chat_template(
                case["messages"], tokenize=False, add_generation_prompt=case["add_generation_prompt"]
            )
            out.append({"text": text, "ids": tok.encode(text, add_special_tokens=False)})
        json.dump(out, sys.stdout)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
