"""Reference test loss with mlx-lm, as `mlx_lm.lora --test` computes it.

  python mlxlm_evaluate.py MODEL ADAPTER|- DATA_DIR BATCH_SIZE MAX_SEQ_LENGTH SEED

Prints {"loss": …, "ppl": …}.
"""
import json
import math
import sys
import types

import numpy as np
from mlx_lm import load
from mlx_lm.tuner.datasets import CacheDataset, load_dataset
from mlx_lm.tuner.trainer import evaluate
from mlx_lm.tuner.utils import load_adapters


def main():
    model_dir, adapter, data = sys.argv[1:4]
    batch_size, max_seq, seed = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    np.random.seed(seed)
    model, tokenizer = load(model_dir)
    args = types.SimpleNamespace(data=data, train=False, test=True, hf_dataset=None, mask_prompt=False)
    _, _, test = load_dataset(args, tokenizer)
    if adapter != "-":
        load_adapters(model, adapter)
    loss = evaluate(model=model, dataset=CacheDataset(test), batch_size=batch_size,
                    num_batches=-1, max_seq_length=max_seq)
    print(json.dumps({"loss": loss, "ppl": math.exp(loss)}))


if __name__ == "__main__":
    main()
