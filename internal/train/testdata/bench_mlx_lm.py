# Runs `python -m mlx_lm lora ARGS…` unchanged, adding a callback that prints each training
# report (it/s, tokens/s, peak memory) as a JSON line for the benchmark to read.
import json
import sys

import mlx_lm.lora as lora
from mlx_lm.tuner.callbacks import TrainingCallback


class Report(TrainingCallback):
    def on_train_loss_report(self, info):
        print("REPORT " + json.dumps(info), flush=True)


lora.get_reporting_callbacks = lambda *a, **k: Report()
sys.argv = ["mlx_lm.lora"] + sys.argv[1:]
lora.main()
