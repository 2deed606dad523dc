#!/usr/bin/env bash
# The governor at full size on one NVIDIA GPU: the seed recipe (llama-3.1-8b-7gb.yaml, which
# ships with an `adapt` stage) at batch 4, on 20 rows of CPython source (a batch of them does
# not fit 7 GB whole) followed by 180 short rows (which do), in order. Prints each step's
# micro-batches and MLX peak: the long batches split, the whole batch comes back after
# relax_after steps, and no step passes the limit. Run through `go tool task bench:cuda-governor`.
set -euo pipefail
PY=${PY:-python3}
MODEL=${MODEL:-.models/llama-3.1-8b-shape}
DATA=${DATA:-.models/cpython-rows}
LIMIT=${LIMIT:-7GB}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[ -f "$MODEL/config.json" ] || go run ./cmd/yai-tinymodel -out "$MODEL" -preset llama-3.1-8b
[ -f "$DATA/train.jsonl" ] || "$PY" bench/cpython_rows.py "$DATA"
MODEL=$(realpath "$MODEL") DATA=$(realpath "$DATA")

"$PY" - "$DATA/train.jsonl" "$WORK/data" recipes/llama-3.1-8b-7gb.yaml "$WORK/governed.yaml" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
os.makedirs(sys.argv[2])
phased = rows[:20] + [{"text": r["text"][:300]} for r in rows[20:200]]
for name in ("train", "valid"):
    with open(os.path.join(sys.argv[2], name + ".jsonl"), "x") as f:
        f.writelines(json.dumps(r) + "\n" for r in phased)
recipe = open(sys.argv[3]).read()
assert recipe.count("    kind: adapt\n") == 1, "the seed recipe has no adapt stage"
for old, new in (("name: llama-3.1-8b-7gb", "name: governed"), ("batch_size: 1\n", "batch_size: 4\n")):
    assert recipe.count(old) == 1, old
    recipe = recipe.replace(old, new)
open(sys.argv[4], "x").write(recipe)
PY
bin/yai run --runs-dir "$WORK/runs" "$WORK/governed.yaml" --set model="$MODEL" --set data="$WORK/data" \
  --set steps=40 --set stages.data.with.shuffle=false --set memory.limit="$LIMIT" > "$WORK/yai.log" 2>&1 || { cat "$WORK/yai.log" >&2; exit 1; }
grep -o 'adapt: .*(limit[^)]*)' "$WORK/yai.log" || true
"$PY" - "$(ls -d "$WORK"/runs/governed-*/ | tail -1)metrics.jsonl" <<'PY'
import json, sys
ms = [json.loads(l) for l in open(sys.argv[1])]
print("micro-batches by step:", "".join(str(m["micro_batches"]) for m in ms))
print("MLX peak by step (GB):", " ".join("%.2f" % (m["mlx_peak"] / 1e9) for m in ms))
print("limit %.2f GB; steps over it: %d" % (ms[0]["limit"] / 1e9, sum(m["mlx_peak"] > m["limit"] for m in ms)))
PY
