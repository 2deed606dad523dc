"""mlx-lm side of the model cross-checks (run by the Go tests with the project venv).

    mlxlm_reference.py write OUT CONFIG_JSON SEED [--bits B --group-size G] [--dtype D]
                             [--override PATH=BITS:GROUP | PATH=none ...] [--shard-bytes N]
                             [--tie] [--extra NAME ...]
        builds a model with mlx_lm.models.<model_type>.Model from CONFIG_JSON with random
        weights, casts and quantizes it as mlx_lm.convert does, and saves it with
        mlx_lm.utils.save_model / save_config. --tie runs the (text) model's sanitize
        without an lm_head, which ties it (Gemma 3); --extra adds a zero tensor NAME to the
        file, for tensors sanitize drops (a vision tower).

    mlxlm_reference.py logits MODEL_DIR TOKENS OUT [--dtype D] [--adapter DIR]
        loads MODEL_DIR (converting its floating parameters to D when given) with mlx_lm.utils.load (load_model when it has no tokenizer), adds the LoRA adapters of DIR with mlx_lm.tuner.utils.load_adapters when given, and writes the logits for TOKENS
        ("1,2,3;4,5,6": one row per sequence) to OUT (safetensors, key "logits").

    mlxlm_reference.py adapters MODEL_DIR OUT NUM_LAYERS RANK SCALE SEED
        adds LoRA adapters to every module mlx_lm.lora adapts by default (linear_to_lora_layers
        without keys) in the last NUM_LAYERS blocks, draws lora_a and lora_b at random, and
        saves them as mlx_lm.lora does (adapters.safetensors, adapter_config.json).

    mlxlm_reference.py bench MODEL_DIR TOKENS ITERS
        prints the mean seconds of one evaluated forward pass.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_map, tree_map_with_path

import mlx_lm.utils as lmutils


def write(args):
    config = json.loads(args.config)
    mx.random.seed(args.seed)
    model_class, args_class = lmutils._get_classes(config)
    model = model_class(args_class.from_dict(config))
    if args.tie:
        getattr(model, "language_model", model).sanitize({})
    # Norms start at one: perturb them so a swapped or missing norm shows in the logits.
    model.update(
        tree_map_with_path(
            lambda k, v: v + 0.1 * mx.random.normal(v.shape) if k.endswith("norm.weight") else v,
            model.parameters(),
        )
    )
    dtype = getattr(mx, args.dtype)
    model.update(tree_map(lambda v: v.astype(dtype) if mx.issubdtype(v.dtype, mx.floating) else v, model.parameters()))
    config["torch_dtype"] = args.dtype
    if args.bits:
        overrides = {}
        for o in args.override or []:
            path, spec = o.split("=")
            if spec == "none":
                overrides[path] = False
            else:
                bits, group = spec.split(":")
                overrides[path] = {"group_size": int(group), "bits": int(bits), "mode": "affine"}

        # As mlx_lm.convert: the model's own predicate (qwen3_moe keeps its router at 8 bits),
        # under the overrides.
        model_predicate = getattr(model, "quant_predicate", None)

        def predicate(path, module):
            if path in overrides:
                return overrides[path]
            return model_predicate(path, module) if model_predicate else True

        model, config = lmutils.quantize_model(
            model, config, args.group_size, args.bits, mode="affine", quant_predicate=predicate
        )
    if args.shard_bytes:
        limit = args.shard_bytes

        def make_shards(weights, max_file_size_gb=None):
            shards, size = [], 0
            for k, v in weights.items():
                if not shards or size + v.nbytes > limit:
                    shards.append({})
                    size = 0
                shards[-1][k] = v
                size += v.nbytes
            return shards

        lmutils.make_shards = make_shards
    out = Path(args.out)
    lmutils.save_model(out, model)
    lmutils.save_config(config, out / "config.json")
    if args.extra:
        path = out / "model.safetensors"
        weights = mx.load(str(path))
        for name in args.extra:
            weights[name] = mx.zeros((2, 2))
        mx.save_safetensors(str(path), weights, metadata={"format": "mlx"})
        index_path = out / "model.safetensors.index.json"
        if index_path.exists():
            index = json.loads(index_path.read_text())
            for name in args.extra:
                index["weight_map"][name] = "model.safetensors"
            index_path.write_text(json.dumps(index, indent=4))


def parse_tokens(s):
    return mx.array([[int(t) for t in row.split(",")] for row in s.split(";")], dtype=mx.int32)


def logits(args):
    path = Path(args.model)
    if (path / "tokenizer.json").exists():
        # The full mlx_lm.load also checks that the tokenizer and its config load.
        model, _ = lmutils.load(str(path))
    else:
        model, _ = lmutils.load_model(path)
    if args.adapter:
        from mlx_lm.tuner.utils import load_adapters

        model = load_adapters(model, args.adapter)
    if args.dtype:
        # Convert the floating parameters (scales, biases, norms) after loading.
        dtype = getattr(mx, args.dtype)
        model.update(tree_map(lambda v: v.astype(dtype) if mx.issubdtype(v.dtype, mx.floating) else v, model.parameters()))
    out = model(parse_tokens(args.tokens))
    mx.save_safetensors(args.out, {"logits": out})


def adapters(args):
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, _ = lmutils.load_model(Path(args.model))
    model.freeze()
    params = {"rank": args.rank, "dropout": 0.0, "scale": args.scale}
    linear_to_lora_layers(model, args.num_layers, params)
    mx.random.seed(args.seed)
    model.update(
        tree_map(lambda v: 0.05 * mx.random.normal(v.shape), model.trainable_parameters())
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
    config = {"fine_tune_type": "lora", "num_layers": args.num_layers, "lora_parameters": params}
    (out / "adapter_config.json").write_text(json.dumps(config, indent=4))


def bench(args):
    model, _ = lmutils.load_model(Path(args.model))
    tokens = parse_tokens(args.tokens)
    mx.eval(model(tokens))  # warm-up
    start = time.perf_counter()
    for _ in range(args.iters):
        mx.eval(model(tokens))
    print((time.perf_counter() - start) / args.iters)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("out")
    w.add_argument("config")
    w.add_argument("seed", type=int)
    w.add_argument("--bits", type=int, default=0)
    w.add_argument("--group-size", type=int, default=64)
    w.add_argument("--dtype", default="float16")
    w.add_argument("--override", action="append")
    w.add_argument("--shard-bytes", type=int, default=0)
    w.add_argument("--tie", action="store_true")
    w.add_argument("--extra", action="append")
    l = sub.add_parser("logits")
    l.add_argument("model")
    l.add_argument("tokens")
    l.add_argument("out")
    l.add_argument("--dtype", default="")
    l.add_argument("--adapter", default="")
    a = sub.add_parser("adapters")
    a.add_argument("model")
    a.add_argument("out")
    a.add_argument("num_layers", type=int)
    a.add_argument("rank", type=int)
    a.add_argument("scale", type=float)
    a.add_argument("seed", type=int)
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("tokens")
    b.add_argument("iters", type=int)
    args = p.parse_args()
    {"write": write, "logits": logits, "adapters": adapters, "bench": bench}[args.cmd](args)


if __name__ == "__main__":
    main()
