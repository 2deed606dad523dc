#!/usr/bin/env bash
# yai against mlx_lm.lora on one NVIDIA GPU, in one run: the same random model of
# Llama-3.1-8B's published shape, the same rows of CPython source, the same configuration
# (rank 16 / scale 2 on q_proj of the last 4 blocks, batch 1, AdamW, gradient checkpointing),
# at each max_seq_length of LENGTHS. Prints tokens/s after warm-up and MLX's peak for both.
# Run through `go tool task bench:cuda`, which builds bin/yai against the CUDA wheel and makes
# .venv-cuda (mlx-cuda and mlx-lm, pinned). Each side's first step compiles MLX's CUDA kernels
# (yai's took 101 s on an H100), outside the timed steps: allow minutes per length.
set -euo pipefail
ITERS=${ITERS:-60}
LENGTHS=${LENGTHS:-256 1024 2048}
PY=${PY:-.venv-cuda/bin/python}
MODEL=${MODEL:-.models/llama-3.1-8b-shape}
DATA=${DATA:-.models/cpython-rows}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[ -f "$MODEL/config.json" ] || go run ./cmd/yai-tinymodel -out "$MODEL" -preset llama-3.1-8b
[ -f "$DATA/train.jsonl" ] || "$PY" bench/cpython_rows.py "$DATA"
MODEL=$(realpath "$MODEL") DATA=$(realpath "$DATA")

printf '%-15s %12s %12s %7s %12s %12s\n' max_seq_length "yai tok/s" "mlx-lm tok/s" ratio "yai peak" "mlx-lm peak"
for L in $LENGTHS; do
  cat > "$WORK/mlxlm.yaml" <<CFG
model: $MODEL
train: true
data: $DATA
fine_tune_type: lora
num_layers: 4
batch_size: 1
iters: $ITERS
learning_rate: 1.0e-5
max_seq_length: $L
grad_checkpoint: true
steps_per_report: 10
steps_per_eval: 100000
val_batches: 1
adapter_path: $WORK/mlxlm-adapters
seed: 0
lora_parameters: {keys: [self_attn.q_proj], rank: 16, scale: 2.0, dropout: 0.0}
CFG
  "$PY" bench/mlxlm_lora.py "$WORK/mlxlm.yaml" > "$WORK/mlxlm.out" 2>"$WORK/mlxlm.log" || { cat "$WORK/mlxlm.log" >&2; exit 1; }
  read -r ref refpeak < <(tail -1 "$WORK/mlxlm.out")
  cat > "$WORK/yai.yaml" <<RCP
version: 1
name: side-$L
model: $MODEL
data: $DATA
steps: $ITERS
memory: {limit: 60GB}
stages:
  - {id: load, kind: load-4bit}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 16, alpha: 32, layers: 4, keys: [self_attn.q_proj]}}
  - {id: data, kind: data, after: [load], with: {format: text, batch_size: 1, max_seq_length: $L}}
  - {id: train, kind: step, with: {optimizer: adamw, lr: 1e-5, grad_checkpoint: true}}
RCP
  bin/yai run --runs-dir "$WORK/runs" "$WORK/yai.yaml" > "$WORK/yai.log" 2>&1 || { cat "$WORK/yai.log" >&2; exit 1; }
  read -r got gotpeak < <("$PY" -c '
import json, sys
ms = [json.loads(l) for l in open(sys.argv[1])]
w = 10
dt = ms[-1]["elapsed"] - ms[w - 1]["elapsed"]
print("%.0f %.2f" % (sum(m["tokens"] for m in ms[w:]) / dt, max(m["mlx_peak"] for m in ms) / 1e9))' "$(ls -d "$WORK"/runs/side-*/ | tail -1)metrics.jsonl")
  rm -rf "$WORK/runs"
  printf '%-15s %12s %12s %6.2fx %9s GB %9s GB\n' "$L" "$got" "$ref" "$(awk -v a="$got" -v b="$ref" 'BEGIN { print a / b }')" "$gotpeak" "$refpeak"
done
