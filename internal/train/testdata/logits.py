# Loads a model with yai's adapters through mlx_lm.utils.load (the --adapter-path route of
# mlx_lm.generate) and saves the logits of the given tokens.
# usage: logits.py MODEL_DIR ADAPTER_DIR TOKENS_FILE OUT_FILE
import sys

import mlx.core as mx
from mlx_lm.utils import load

model, _ = load(sys.argv[1], adapter_path=sys.argv[2])
tokens = mx.load(sys.argv[3])["tokens"]
mx.save_safetensors(sys.argv[4], {"logits": model(tokens).astype(mx.float32)})
