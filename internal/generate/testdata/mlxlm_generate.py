"""Reference generation with mlx-lm for the generate package's tests.

  generate MODEL ADAPTER|- IDS MAX [REPEAT]   greedy stream_generate from token ids
  serve MODEL ADAPTER|- IDS MAX               one greedy generation per line read from stdin,
                                              one JSON line out each (benchmarks interleave)
  chat MODEL ADAPTER|- MESSAGES_JSON MAX      greedy, prompt = chat template over messages
  filter CASES_JSON                           apply_top_p / apply_min_p / apply_top_k on
                                              [[which, value, logprobs], …]

Prints one JSON object.
"""
import json
import sys

import mlx.core as mx
from mlx_lm import load, stream_generate
from mlx_lm.sample_utils import apply_min_p, apply_top_k, apply_top_p, make_sampler


def run(model, tokenizer, prompt, max_tokens):
    tokens, text, last = [], "", None
    for r in stream_generate(model, tokenizer, prompt=prompt, max_tokens=max_tokens,
                             sampler=make_sampler(0.0)):
        text += r.text
        if r.finish_reason != "stop":
            tokens.append(r.token)
        last = r
    return {"tokens": tokens, "text": text, "prompt_tps": last.prompt_tps,
            "generation_tps": last.generation_tps, "peak_memory": last.peak_memory,
            "finish_reason": last.finish_reason}


def main():
    cmd = sys.argv[1]
    if cmd == "filter":
        answers = []
        for which, value, lp in json.loads(sys.argv[2]):
            lp = mx.array(lp)[None]
            if which == "top_p":
                out = apply_top_p(lp, value)
            elif which == "min_p":
                out = apply_min_p(lp, value)
            else:
                out = apply_top_k(lp, int(value))
            answers.append([i for i, v in enumerate(out[0].tolist()) if v != float("-inf")])
        print(json.dumps({"kept": answers}))
        return
    model_dir, adapter = sys.argv[2], sys.argv[3]
    model, tokenizer = load(model_dir, adapter_path=None if adapter == "-" else adapter)
    if cmd == "generate":
        ids = [int(t) for t in sys.argv[4].split(",")]
        repeat = int(sys.argv[6]) if len(sys.argv) > 6 else 1
        results = [run(model, tokenizer, ids, int(sys.argv[5])) for _ in range(repeat)]
        out = results[-1]
        out["all_prompt_tps"] = [r["prompt_tps"] for r in results]
        out["all_generation_tps"] = [r["generation_tps"] for r in results]
        print(json.dumps(out))
    elif cmd == "serve":
        ids = [int(t) for t in sys.argv[4].split(",")]
        for _ in sys.stdin:
            print(json.dumps(run(model, tokenizer, ids, int(sys.argv[5]))), flush=True)
    elif cmd == "chat":
        messages = json.loads(sys.argv[4])
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer.encode(text, add_special_tokens=False)
        out = run(model, tokenizer, ids, int(sys.argv[5]))
        out["prompt"] = ids
        print(json.dumps(out))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
