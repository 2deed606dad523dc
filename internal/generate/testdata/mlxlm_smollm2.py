"""mlx-lm's answers on a model directory, for the SmolLM2 tests. Reads JSON on stdin.

generate DIR: {"prompts": [[ids]], "max_tokens": n} -> the greedy tokens of
              mlx_lm.generate.generate_step for each prompt (argmax sampler, no stop).
argmax DIR:   {"ids": [ids]} -> the argmax of the logits at every position of one forward.
"""
import json
import sys

import mlx.core as mx
from mlx_lm import load
from mlx_lm.generate import generate_step


def main(cmd, path):
    req = json.load(sys.stdin)
    model, _ = load(path)
    if cmd == "generate":
        out = []
        for ids in req["prompts"]:
            steps = generate_step(mx.array(ids), model, max_tokens=req["max_tokens"])
            out.append([int(tok) for tok, _ in steps])
    else:
        logits = model(mx.array(req["ids"])[None])
        out = mx.argmax(logits[0], axis=-1).tolist()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
