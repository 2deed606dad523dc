# The mlx-lm side of the training parity tests, for a model of any family. On the model in
# MODEL_DIR with yai's initial adapters in INIT_DIR (whose adapter_config.json names the
# layers, rank, scale and keys), loaded as mlx_lm loads adapters, it records in
# OUT_DIR/reference.safetensors:
#   tokens, init/logits        logits of fixed tokens with yai's adapters
#   one/...                    loss and LoRA gradients of one batch
#   step/I/..., losses         each batch mlx_lm.tuner.trainer.train drew and each loss of
#                              STEPS steps of AdamW with a cosine schedule
#   trained/logits             logits of the tokens after training
# and saves its trained adapters in OUT_DIR as mlx_lm.lora does (adapters.safetensors,
# adapter_config.json).
# usage: reference.py MODEL_DIR INIT_DIR OUT_DIR STEPS
import json
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten
from mlx_lm.lora import CONFIG_DEFAULTS
from mlx_lm.tuner import trainer
from mlx_lm.tuner.callbacks import TrainingCallback
from mlx_lm.tuner.utils import load_adapters
from mlx_lm.utils import load_model, save_config

model_dir, init_dir, out_dir, steps = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
vocab = json.load(open(f"{model_dir}/config.json"))["vocab_size"]
model, _ = load_model(Path(model_dir))
model.freeze()
load_adapters(model, init_dir)

out = {}
rng = np.random.default_rng(11)
tokens = mx.array(rng.integers(0, vocab, (2, 6)), dtype=mx.int32)
out["tokens"], out["init/logits"] = tokens, model(tokens).astype(mx.float32)

# Token sequences of varied lengths; a third of them carry a prompt offset (masked prompt).
dataset = []
for i in range(40):
    n = int(rng.integers(8, 70))
    toks = rng.integers(0, min(vocab, 512), n).tolist()
    dataset.append((toks, int(rng.integers(1, n // 2)) if i % 3 == 0 else 0))

np.random.seed(0)
batch, lengths = next(trainer.iterate_batches(dataset, 4, 128))
model.train()
(loss, ntoks), grads = nn.value_and_grad(model, trainer.default_loss)(model, batch, lengths)
out["one/tokens"], out["one/lengths"], out["one/loss"], out["one/ntoks"] = batch, lengths, loss, ntoks
for k, g in tree_flatten(grads):
    out["one/grad/" + k] = g

drawn = []
def recording_batches(**kw):
    for b in trainer.iterate_batches(**kw):
        drawn.append(b)
        yield b

losses = []
class Record(TrainingCallback):
    def on_train_loss_report(self, info):
        losses.append(info["train_loss"])

np.random.seed(0)
out_dir.mkdir(parents=True, exist_ok=True)
args = trainer.TrainingArgs(batch_size=4, iters=steps, steps_per_report=1, max_seq_length=128,
                            adapter_file=str(out_dir / "adapters.safetensors"))
opt = optim.AdamW(learning_rate=optim.cosine_decay(2e-3, steps, 1e-4))
trainer.train(model, opt, dataset, None, args, iterate_batches=recording_batches,
              training_callback=Record())
for i, (b, l) in enumerate(drawn[:steps]):
    out[f"step/{i}/tokens"], out[f"step/{i}/lengths"] = b, l
out["losses"] = mx.array(losses)
model.eval()
out["trained/logits"] = model(tokens).astype(mx.float32)
mx.save_safetensors(str(out_dir / "reference.safetensors"), out)

# adapter_config.json as mlx_lm.lora writes it: its defaults and this run's arguments.
init = json.load(open(f"{init_dir}/adapter_config.json"))
cfg = dict(CONFIG_DEFAULTS, model=model_dir, train=True, iters=steps, optimizer="adamw",
           num_layers=init["num_layers"], lora_parameters=init["lora_parameters"], adapter_path=str(out_dir))
save_config(cfg, out_dir / "adapter_config.json")
