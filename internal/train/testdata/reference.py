# The mlx-lm side of the parity tests. On the model in MODEL_DIR with yai's initial adapters
# in INIT_DIR, it (1) computes loss and LoRA gradients of the first batch and (2) trains
# STEPS steps with mlx_lm.tuner.trainer.train, recording each batch it drew and each loss.
# usage: reference.py MODEL_DIR INIT_DIR OUT_FILE STEPS
import json
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten
from mlx_lm.tuner import trainer
from mlx_lm.tuner.callbacks import TrainingCallback
from mlx_lm.tuner.utils import linear_to_lora_layers
from mlx_lm.utils import load_model

model_dir, init_dir, out_file, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = json.load(open(f"{init_dir}/adapter_config.json"))
model, _ = load_model(Path(model_dir))
model.freeze()
linear_to_lora_layers(model, cfg["num_layers"], cfg["lora_parameters"])
model.load_weights(f"{init_dir}/adapters.safetensors", strict=False)

# Token sequences of varied lengths; a third of them carry a prompt offset (masked prompt).
rng = np.random.default_rng(11)
dataset = []
for i in range(40):
    n = int(rng.integers(8, 70))
    toks = rng.integers(0, 512, n).tolist()
    dataset.append((toks, int(rng.integers(1, n // 2)) if i % 3 == 0 else 0))

out = {}
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
args = trainer.TrainingArgs(batch_size=4, iters=steps, steps_per_report=1, max_seq_length=128,
                            adapter_file=out_file + ".adapters.safetensors")
opt = optim.AdamW(learning_rate=optim.cosine_decay(2e-3, steps, 1e-4))
trainer.train(model, opt, dataset, None, args, iterate_batches=recording_batches,
              training_callback=Record())
for i, (b, l) in enumerate(drawn[:steps]):
    out[f"step/{i}/tokens"], out[f"step/{i}/lengths"] = b, l
out["losses"] = mx.array(losses)
mx.save_safetensors(out_file, out)
