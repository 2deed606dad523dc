#!/usr/bin/env bash
# Long rows inside the seed's 7 GB on one NVIDIA GPU: the seed recipe as shipped
# (recipes/llama-3.1-8b-7gb.yaml: rank 16 on q_proj of the last 4 blocks, memory.limit 7GB)
# on a random model of Llama-3.1-8B's published shape and rows of CPython source cut to each
# of LENGTHS tokens (default "8192 16384"), STEPS steps each (default 200), validation off.
# Then the same steps on whole rows (load-4bit sequence_chunks: off) under REF_LIMIT (default
# 70GB) for REF_STEPS steps (default STEPS). Prints, as soon as each run ends, the dry run's
# estimate, speed, the highest MLX peak and the steps over 7 GB of the chunked run, then the
# largest difference between the two runs' losses over the steps both ran. KEEP: a folder to
# copy each run's metrics.jsonl and log to, also when the script is stopped. Run through
# `go tool task bench:cuda-long`.
set -euo pipefail
PY=${PY:-python3}
STEPS=${STEPS:-200}
REF_STEPS=${REF_STEPS:-$STEPS}
REF_LIMIT=${REF_LIMIT:-70GB}
LENGTHS=${LENGTHS:-8192 16384}
MODEL=${MODEL:-.models/llama-3.1-8b-shape}
DATA=${DATA:-.models/cpython-long-rows}
WORK=$(mktemp -d)
keep() {
  [ -n "${KEEP:-}" ] || return 0
  mkdir -p "$KEEP"
  for d in "$WORK"/*/*/; do [ -f "$d/metrics.jsonl" ] && cp "$d/metrics.jsonl" "$KEEP/$(basename "$(dirname "$d")").jsonl"; done
  cp "$WORK"/*.log "$KEEP"/ 2>/dev/null || true
}
trap 'keep; rm -rf "$WORK"' EXIT
trap 'exit 143' TERM INT

[ -f "$MODEL/config.json" ] || go run ./cmd/yai-tinymodel -out "$MODEL" -preset llama-3.1-8b
[ -f "$DATA/train.jsonl" ] || "$PY" bench/cpython_rows.py "$DATA" 120000
MODEL=$(realpath "$MODEL") DATA=$(realpath "$DATA")

run() { # name, tokens, steps, more --set arguments
  local name=$1 len=$2 steps=$3
  shift 3
  bin/yai run --runs-dir "$WORK/$name" recipes/llama-3.1-8b-7gb.yaml --set model="$MODEL" --set data="$DATA" \
    --set steps="$steps" --set stages.data.with.max_seq_length="$len" --set stages.validate.every=1000000 "$@" \
    > "$WORK/$name.log" 2>&1 || { echo "$name: exit code $?" >&2; tail -20 "$WORK/$name.log" >&2; return 1; }
  ls -d "$WORK/$name"/*/ | tail -1
}
summary() { # tokens, chunked metrics, whole-row metrics or nothing
  "$PY" - "$@" <<'PY'
import json, sys
L, path = sys.argv[1], sys.argv[2]
ref = sys.argv[3] if len(sys.argv) > 3 else ""
ms = [json.loads(l) for l in open(path) if l.strip()]
if not ref:
    w = min(5, len(ms) - 1)
    dt = ms[-1]["elapsed"] - ms[w - 1]["elapsed"]
    top = max(ms, key=lambda m: m["mlx_peak"])
    over = [m for m in ms if m["mlx_peak"] > m["limit"]]
    print("%s tokens: %d steps inside %.2f GB, %.0f tokens/s after step %d; highest MLX peak %.3f GB (step %d); steps over the limit: %d"
          % (L, len(ms), ms[0]["limit"] / 1e9, sum(m["tokens"] for m in ms[w:]) / dt, w, top["mlx_peak"] / 1e9, top["step"], len(over)))
    sys.exit()
rs = {m["step"]: m for m in (json.loads(l) for l in open(ref) if l.strip())}
both = [m for m in ms if m["step"] in rs]
d = max(abs(m["loss"] - rs[m["step"]]["loss"]) / abs(rs[m["step"]]["loss"]) for m in both)
rp = max(r["mlx_peak"] for r in rs.values())
print("  whole rows: %d steps, highest MLX peak %.3f GB; losses of the %d steps both ran differ by %.2e relative at most (first %.5f vs %.5f)"
      % (len(rs), rp / 1e9, len(both), d, both[0]["loss"], rs[both[0]["step"]]["loss"]))
PY
}
for L in $LENGTHS; do
  chunked=$(run chunked-$L "$L" "$STEPS") || continue
  grep -o -i -m3 "sequence_chunks=[^ ]*\|estimated[^,]*" "$WORK/chunked-$L.log" || true
  summary "$L" "$chunked/metrics.jsonl"
  whole=$(run whole-$L "$L" "$REF_STEPS" --set stages.load.with.sequence_chunks=off --set memory.limit="$REF_LIMIT") || continue
  summary "$L" "$chunked/metrics.jsonl" "$whole/metrics.jsonl"
done
