#!/usr/bin/env bash
# The seed recipe as shipped (recipes/llama-3.1-8b-7gb.yaml: 1,024 tokens, its governor (adapt),
# clear-cache, reloads, guard and evals, memory.limit 7GB) on one NVIDIA GPU, on a random model of
# Llama-3.1-8B's published shape and rows of CPython source, for STEPS steps. Prints the exit
# code, speed after warm-up, the highest MLX peak and every step whose peak passed the limit:
# the worst case, which is what the README quotes. Run through `go tool task bench:cuda-seed`.
set -euo pipefail
PY=${PY:-python3}
STEPS=${STEPS:-300}
MODEL=${MODEL:-.models/llama-3.1-8b-shape}
DATA=${DATA:-.models/cpython-rows}
WORK=$(mktemp -d)
# KEEP_METRICS: a file to copy the run's metrics.jsonl to (and its log beside it, .log for
# .jsonl), also when the script is stopped.
trap '[ -z "${KEEP_METRICS:-}" ] || { cp "$WORK"/runs/*/metrics.jsonl "$KEEP_METRICS"; cp "$WORK/yai.log" "${KEEP_METRICS%.jsonl}.log"; } 2>/dev/null; rm -rf "$WORK"' EXIT
trap 'exit 143' TERM INT

[ -f "$MODEL/config.json" ] || go run ./cmd/yai-tinymodel -out "$MODEL" -preset llama-3.1-8b
[ -f "$DATA/train.jsonl" ] || "$PY" bench/cpython_rows.py "$DATA"

code=0
bin/yai run --runs-dir "$WORK/runs" recipes/llama-3.1-8b-7gb.yaml --set model="$(realpath "$MODEL")" \
  --set data="$(realpath "$DATA")" --set steps="$STEPS" > "$WORK/yai.log" 2>&1 || code=$?
echo "exit code $code"
grep -m1 "model loaded" "$WORK/yai.log" || true
grep -m3 "adapt" "$WORK/yai.log" || true
[ "$code" = 0 ] || tail -20 "$WORK/yai.log"
"$PY" - "$(ls -d "$WORK"/runs/llama-3.1-8b-7gb-*/ | tail -1)metrics.jsonl" <<'PY'
import json, sys
ms = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
w = min(10, len(ms) - 1)
dt = ms[-1]["elapsed"] - ms[w - 1]["elapsed"]
print("%d steps; after step %d: %.2f steps/s, %.0f tokens/s" % (len(ms), w, (len(ms) - w) / dt, sum(m["tokens"] for m in ms[w:]) / dt))
top = max(ms, key=lambda m: m["mlx_peak"])
print("highest MLX peak %.3f GB (step %d); limit %.2f GB" % (top["mlx_peak"] / 1e9, top["step"], ms[0]["limit"] / 1e9))
over = [m for m in ms if m["mlx_peak"] > m["limit"]]
print("steps over the limit: %d of %d%s" % (len(over), len(ms), "".join(" [step %d: %.3f GB]" % (m["step"], m["mlx_peak"] / 1e9) for m in over[:20])))
act = [m["mlx_active"] for m in ms[w:]]
print("MLX active after warm-up: %.4f to %.4f GB" % (min(act) / 1e9, max(act) / 1e9))
PY
exit "$code"
