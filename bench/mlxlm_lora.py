# Runs mlx_lm.lora on a config file as `mlx_lm.lora -c` does and prints, from its own
# reports, the mean tokens/s of the reports after the first (warm-up) and its peak memory in GB.
import sys
import types

import yaml
from mlx_lm import lora
from mlx_lm.tuner.callbacks import TrainingCallback


class Reports(TrainingCallback):
    def __init__(self):
        self.reports = []

    def on_train_loss_report(self, info):
        self.reports.append(info)


args = vars(lora.build_parser().parse_args(["-c", sys.argv[1]]))
with open(sys.argv[1]) as f:
    for k, v in yaml.load(f, lora.yaml_loader).items():
        if args.get(k) is None:
            args[k] = v
for k, v in lora.CONFIG_DEFAULTS.items():
    if args.get(k) is None:
        args[k] = v
reports = Reports()
lora.get_reporting_callbacks = lambda *a, **k: reports  # run() builds its own otherwise
lora.run(types.SimpleNamespace(**args))
tps = [r["tokens_per_second"] for r in reports.reports[1:]]
print("%.0f %.2f" % (sum(tps) / len(tps), max(r["peak_memory"] for r in reports.reports)))
