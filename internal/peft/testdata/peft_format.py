"""Reads a PEFT adapter directory with safetensors and numpy only (the default test tier),
beside the mlx adapter it came from, and prints what the Go test checks as JSON:
the config, every tensor's shape and dtype, and for each module the largest difference
between peft's lora_A/lora_B and the transposes of mlx's lora_a/lora_b."""
import json
import sys

import numpy as np
from safetensors.numpy import load_file


def main():
    peft_dir, mlx_dir = sys.argv[1], sys.argv[2]
    config = json.load(open(f"{peft_dir}/adapter_config.json"))
    peft = load_file(f"{peft_dir}/adapter_model.safetensors")
    mlx = load_file(f"{mlx_dir}/adapters.safetensors")
    prefix = "base_model.model."
    diffs = {}
    for name, t in peft.items():
        module, _, leaf = name[len(prefix):].rpartition(".lora_")
        src = mlx[module + (".lora_a" if leaf == "A.weight" else ".lora_b")]
        diffs[name] = float(np.max(np.abs(t - src.T))) if t.shape == src.T.shape else None
    print(json.dumps({
        "config": config,
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in peft.items()},
        "diffs": diffs,
    }))


def write(out_dir):
    """Writes a PEFT-layout adapter by hand (float16, rsLoRA, every block's q_proj and
    o_proj of the tiny model) as peft would, for the import test."""
    rng = np.random.default_rng(7)
    tensors = {}
    for i in range(4):
        for key, (inp, out) in {"self_attn.q_proj": (128, 128), "self_attn.o_proj": (128, 128)}.items():
            p = f"base_model.model.model.layers.{i}.{key}"
            tensors[p + ".lora_A.weight"] = rng.normal(0, 0.1, (2, inp)).astype(np.float16)
            tensors[p + ".lora_B.weight"] = rng.normal(0, 0.1, (out, 2)).astype(np.float16)
    from safetensors.numpy import save_file
    save_file(tensors, f"{out_dir}/adapter_model.safetensors", metadata={"format": "pt"})
    json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 6, "use_rslora": True,
               "target_modules": ["q_proj", "o_proj"], "bias": "none", "lora_dropout": 0.0},
              open(f"{out_dir}/adapter_config.json", "w"))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        main()
