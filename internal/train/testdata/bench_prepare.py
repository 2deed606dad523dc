# Draws the batches mlx_lm.lora would train on (same dataset loading, same seed, same
# iterate_batches) and saves them for yai's side of the benchmark.
# usage: bench_prepare.py MODEL_DIR DATA_DIR BATCH_SIZE ITERS OUT_FILE [MASK_PROMPT MAX_SEQ_LENGTH]
import sys
import types

import mlx.core as mx
import numpy as np
from mlx_lm.tuner.datasets import CacheDataset, load_dataset
from mlx_lm.tuner.trainer import iterate_batches
from mlx_lm.utils import load

model_dir, data_dir, batch_size, iters, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
mask_prompt = len(sys.argv) > 6 and sys.argv[6] == "1"
max_seq_length = int(sys.argv[7]) if len(sys.argv) > 7 else 2048
_, tokenizer = load(model_dir)
args = types.SimpleNamespace(data=data_dir, train=True, test=False, mask_prompt=mask_prompt,
                             hf_dataset=None)
train, _, _ = load_dataset(args, tokenizer)
np.random.seed(0)
saved = {}
for i, (b, l) in zip(range(iters), iterate_batches(CacheDataset(train), batch_size, max_seq_length, loop=True)):
    saved[f"{i}/tokens"], saved[f"{i}/lengths"] = b, l
mx.save_safetensors(out, saved)
