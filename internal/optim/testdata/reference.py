# Runs mlx.optimizers on the parameters and gradients yai wrote, for the cases in cases.json,
# and saves every step's parameters so the Go test can compare them with its own.
import json
import sys

import mlx.core as mx
import mlx.optimizers as optim
from mlx_lm.tuner.utils import build_schedule

inputs, cases_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
data = mx.load(inputs)
cases = json.load(open(cases_file))
names = sorted({k.split("/", 1)[1] for k in data if k.startswith("param/")})
steps = len({k.split("/")[1] for k in data if k.startswith("grad/")})
result = {}
for case in cases:
    c = case["config"]
    lr = build_schedule(c["lr_schedule"]) if c.get("lr_schedule") else c["learning_rate"]
    if c["name"] == "sgd":
        opt = optim.SGD(lr, momentum=c["momentum"], weight_decay=c["weight_decay"],
                        dampening=c["dampening"], nesterov=c["nesterov"])
    elif c["name"] == "adam":
        opt = optim.Adam(lr, betas=c["betas"], eps=c["eps"], bias_correction=c["bias_correction"])
    else:
        opt = optim.AdamW(lr, betas=c["betas"], eps=c["eps"], weight_decay=c["weight_decay"],
                          bias_correction=c["bias_correction"])
    params = {n: data["param/" + n] for n in names}
    for t in range(steps):
        grads = {n: data[f"grad/{t}/{n}"] for n in names}
        if c.get("max_grad_norm"):
            grads, norm = optim.clip_grad_norm(grads, c["max_grad_norm"])
            result[f"{case['name']}/{t}/norm"] = norm
        params = opt.apply_gradients(grads, params)
        result[f"{case['name']}/{t}/lr"] = opt.learning_rate  # the rate this step used
        mx.eval(params, opt.state)
        for n in names:
            result[f"{case['name']}/{t}/{n}"] = params[n]
mx.save_safetensors(out, result)
