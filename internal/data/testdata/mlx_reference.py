"""Runs mlx-lm 0.32's own dataset and batching code, for the Go tests to compare against.

    mlx_reference.py TOKENIZER_DIR DATA_DIR MASK_PROMPT BATCH_SIZE MAX_SEQ_LENGTH SEED TRAIN_BATCHES

Prints JSON: per split, the processed examples ([tokens, offset]) and the batches that
iterate_batches yields after np.random.seed(SEED): TRAIN_BATCHES training batches (loop=True),
then one pass over the validation set, drawing from the same numpy stream as mlx_lm.lora does.
"""

import io
import json
import sys
import types
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from mlx_lm.tokenizer_utils import TokenizerWrapper
from mlx_lm.tuner.datasets import CacheDataset, load_local_dataset
from mlx_lm.tuner.trainer import iterate_batches


def batches(dataset, batch_size, max_seq_length, loop, count=None):
    out = []
    with redirect_stdout(io.StringIO()):  # truncation warnings
        for batch, pairs in iterate_batches(CacheDataset(dataset), batch_size, max_seq_length, loop=loop):
            out.append({"tokens": np.array(batch).tolist(), "offsets_lengths": np.array(pairs).tolist()})
            if count is not None and len(out) == count:
                break
    return out


def main():
    tok_dir, data_dir, mask, batch_size, max_seq, seed, train_batches = sys.argv[1:8]
    tokenizer = TokenizerWrapper(AutoTokenizer.from_pretrained(tok_dir))
    config = types.SimpleNamespace(mask_prompt=mask == "1")
    train, valid, _ = load_local_dataset(Path(data_dir), tokenizer, config)
    result = {}
    for name, ds in (("train", train), ("valid", valid)):
        result[name] = {"examples": [list(ds.process(ds[i])) for i in range(len(ds))]}
    np.random.seed(int(seed))
    result["train"]["batches"] = batches(train, int(batch_size), int(max_seq), True, int(train_batches))
    result["valid"]["batches"] = batches(valid, int(batch_size), int(max_seq), False)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
