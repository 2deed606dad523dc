# Writes a small random Llama model in mlx-community 4-bit format (quantized by mlx itself),
# with a byte-level tokenizer and, when asked, a text dataset in mlx-lm's layout.
# usage: make_model.py OUT_DIR DTYPE LAYERS HIDDEN [DATA_DIR ROWS]
import json
import random
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten
from mlx_lm.models import llama

out = Path(sys.argv[1])
dtype = getattr(mx, sys.argv[2])
layers, hidden = int(sys.argv[3]), int(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
config = dict(
    model_type="llama", hidden_size=hidden, num_hidden_layers=layers,
    intermediate_size=hidden * 2 + hidden // 2, num_attention_heads=4, num_key_value_heads=2,
    rms_norm_eps=1e-5, vocab_size=512, rope_theta=10000.0, tie_word_embeddings=False,
    max_position_embeddings=2048,
)
mx.random.seed(3)
model = llama.Model(llama.ModelArgs.from_dict(config))
model.set_dtype(dtype)
nn.quantize(model, group_size=32, bits=4)
mx.save_safetensors(str(out / "model.safetensors"), dict(tree_flatten(model.parameters())), metadata={"format": "mlx"})
config["quantization"] = {"group_size": 32, "bits": 4}
config["torch_dtype"] = sys.argv[2]
config["architectures"] = ["LlamaForCausalLM"]
(out / "config.json").write_text(json.dumps(config, indent=2))

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

vocab = {c: i for i, c in enumerate(pre_tokenizers.ByteLevel.alphabet())}
vocab["<s>"], vocab["</s>"] = len(vocab), len(vocab) + 1
tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>").save_pretrained(str(out))

if len(sys.argv) > 5:
    data, rows = Path(sys.argv[5]), int(sys.argv[6])
    data.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(5)
    words = "the a cat dog runs sleeps over under quick brown lazy fox river stone light".split()
    for split, n in (("train", rows), ("valid", max(rows // 8, 8)), ("test", 8)):
        with open(data / f"{split}.jsonl", "w") as f:
            for _ in range(n):
                text = " ".join(rnd.choice(words) for _ in range(rnd.randint(12, 40)))
                f.write(json.dumps({"text": text}) + "\n")
