"""Records reference results from the Python mlx package for the Go binding tests.

Run with the pinned package (go tool task setup installs it):
    .venv/bin/python mlx/testdata/gen_fixtures.py
Writes ops.json and python.safetensors beside this file. Each case names an op, its inputs
(shape, dtype, values) and parameters, and the output mlx computed.
"""

import json
import os

import mlx.core as mx
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(1234)


def arr(shape, dtype="float32", low=-2.0, high=2.0):
    if dtype in ("int32", "uint32"):
        return mx.array(rng.integers(0 if dtype == "uint32" else -5, 6, size=shape).astype(dtype))
    if dtype == "bool":
        return mx.array(rng.integers(0, 2, size=shape).astype(bool))
    return mx.array(rng.uniform(low, high, size=shape).astype(np.float32)).astype(getattr(mx, dtype))


def enc(a):
    a = mx.array(a)
    dt = str(a.dtype).replace("mlx.core.", "")
    vals = np.array(a.astype(mx.float32) if dt in ("float16", "bfloat16") else a)
    return {"shape": list(a.shape), "dtype": dt, "data": vals.astype(np.float64).flatten().tolist()}


cases = []


def case(name, op, inputs, out, **params):
    outs = out if isinstance(out, (list, tuple)) else [out]
    cases.append({"name": name, "op": op, "inputs": [enc(i) for i in inputs],
                  "params": params, "outputs": [enc(o) for o in outs]})


a, b = arr((3, 4)), arr((3, 4))
pos = arr((3, 4), low=0.1, high=3.0)
unary = {"abs": mx.abs, "negative": mx.negative, "exp": mx.exp, "sin": mx.sin, "cos": mx.cos,
         "tanh": mx.tanh, "sigmoid": mx.sigmoid, "square": mx.square, "erf": mx.erf,
         "floor": mx.floor, "ceil": mx.ceil, "round": mx.round, "sign": mx.sign}
for n, f in unary.items():
    case(n, n, [a], f(a))
for n, f in {"log": mx.log, "sqrt": mx.sqrt, "rsqrt": mx.rsqrt, "log1p": mx.log1p,
             "reciprocal": mx.reciprocal}.items():
    case(n, n, [pos], f(pos))
binary = {"add": mx.add, "subtract": mx.subtract, "multiply": mx.multiply, "divide": mx.divide,
          "maximum": mx.maximum, "minimum": mx.minimum, "equal": mx.equal,
          "not_equal": mx.not_equal, "less": mx.less, "less_equal": mx.less_equal,
          "greater": mx.greater, "greater_equal": mx.greater_equal, "logaddexp": mx.logaddexp}
for n, f in binary.items():
    case(n, n, [a, b], f(a, b))
case("power", "power", [pos, b], mx.power(pos, b))
row = arr((4,))
case("add_broadcast", "add", [a, row], a + row)
ia, ib = arr((3, 4), "int32"), arr((3, 4), "int32", ) + 7
case("remainder", "remainder", [ia, ib], mx.remainder(ia, ib))
case("floor_divide", "floor_divide", [ia, ib], mx.floor_divide(ia, ib))
ba, bb = arr((5,), "bool"), arr((5,), "bool")
case("logical_and", "logical_and", [ba, bb], mx.logical_and(ba, bb))
case("logical_or", "logical_or", [ba, bb], mx.logical_or(ba, bb))
case("logical_not", "logical_not", [ba], mx.logical_not(ba))
m1, m2 = arr((2, 3, 5)), arr((2, 5, 4))
case("matmul", "matmul", [m1, m2], m1 @ m2)
case("matmul_f16", "matmul", [m1.astype(mx.float16), m2.astype(mx.float16)], m1.astype(mx.float16) @ m2.astype(mx.float16))
r = arr((2, 3, 4))
for n, f in {"sum": mx.sum, "mean": mx.mean, "max": mx.max, "min": mx.min, "prod": mx.prod,
             "logsumexp": mx.logsumexp, "var": mx.var}.items():
    case(n + "_axis", n, [r], f(r, axis=1), axes=[1], keepdims=False)
    case(n + "_keep", n, [r], f(r, axis=[0, 2], keepdims=True), axes=[0, 2], keepdims=True)
    case(n + "_all", n, [r], f(r), axes=[], keepdims=False)
case("all", "all", [ba], mx.all(ba), axes=[], keepdims=False)
case("any", "any", [ba], mx.any(ba), axes=[], keepdims=False)
case("softmax", "softmax", [r], mx.softmax(r, axis=-1), axes=[-1])
case("softmax_axis0", "softmax", [r], mx.softmax(r, axis=0), axes=[0])
case("argmax", "argmax", [r], mx.argmax(r, axis=2), axis=2, keepdims=False)
case("argmin", "argmin", [r], mx.argmin(r, axis=1, keepdims=True), axis=1, keepdims=True)
case("sort", "sort", [r], mx.sort(r, axis=-1), axis=-1)
case("argsort", "argsort", [r], mx.argsort(r, axis=1), axis=1)
case("cumsum", "cumsum", [r], mx.cumsum(r, axis=2), axis=2, reverse=False, inclusive=True)
case("cumsum_rev", "cumsum", [r], mx.cumsum(r, axis=1, reverse=True, inclusive=False), axis=1, reverse=True, inclusive=False)
case("reshape", "reshape", [r], r.reshape(4, -1), shape=[4, -1])
case("transpose", "transpose", [r], r.transpose(2, 0, 1), axes=[2, 0, 1])
case("transpose_rev", "transpose", [r], r.T, axes=[])
case("broadcast_to", "broadcast_to", [row], mx.broadcast_to(row, (3, 4)), shape=[3, 4])
case("expand_dims", "expand_dims", [a], mx.expand_dims(a, 1), axis=1)
sq = arr((1, 3, 1))
case("squeeze", "squeeze", [sq], mx.squeeze(sq), axes=[])
case("squeeze_axis", "squeeze", [sq], mx.squeeze(sq, 2), axes=[2])
case("concatenate", "concatenate", [a, b], mx.concatenate([a, b], axis=1), axis=1)
case("stack", "stack", [a, b], mx.stack([a, b], axis=0), axis=0)
case("split", "split", [r], mx.split(r, 2, axis=2), sections=2, axis=2)
case("split_at", "split_at", [r], mx.split(r, [1, 2], axis=1), indices=[1, 2], axis=1)
case("slice", "slice", [r], r[0:2, 1:3:1, ::2], start=[0, 1, 0], stop=[2, 3, 4], strides=[1, 1, 2])
upd = arr((2, 1, 4))
x = mx.array(r)
x[:, 1:2, :] = upd
case("slice_update", "slice_update", [r, upd], x, start=[0, 1, 0], stop=[2, 2, 4])
idx = mx.array([2, 0, 1, 2], dtype=mx.int32)
case("take", "take", [a, idx], mx.take(a, idx, axis=1), axis=1)
emb = arr((10, 4))
toks = mx.array([[1, 9, 3], [0, 0, 7]], dtype=mx.int32)
case("take_rows", "take", [emb, toks], emb[toks], axis=0)
tidx = mx.array(rng.integers(0, 4, size=(2, 3, 1)).astype(np.int32))
case("take_along_axis", "take_along_axis", [r, tidx], mx.take_along_axis(r, tidx, axis=2), axis=2)
cond = arr((3, 4), "bool")
case("where", "where", [cond, a, b], mx.where(cond, a, b))
case("arange", "arange", [], mx.arange(1.0, 4.0, 0.5), start=1.0, stop=4.0, step=0.5, dtype="float32")
case("arange_int", "arange", [], mx.arange(0, 10, 3, dtype=mx.int32), start=0, stop=10, step=3, dtype="int32")
case("full", "full", [], mx.full((2, 3), 2.5), shape=[2, 3], value=2.5, dtype="float32")
case("astype_f16", "astype", [a], a.astype(mx.float16), dtype="float16")
case("astype_bf16", "astype", [a], a.astype(mx.bfloat16), dtype="bfloat16")
case("astype_i32", "astype", [a * 3], (a * 3).astype(mx.int32), dtype="int32")
lo, hi = mx.array(-0.5), mx.array(0.7)
case("clip", "clip", [a, lo, hi], mx.clip(a, -0.5, 0.7))
sqm = arr((4, 4))
case("tril", "tril", [sqm], mx.tril(sqm, -1), k=-1)
case("triu", "triu", [sqm], mx.triu(sqm, 1), k=1)
cm = arr((3, 4))
case("addmm", "addmm", [cm, m1[0], m2[0]], mx.addmm(cm, m1[0], m2[0], alpha=0.5, beta=2.0), alpha=0.5, beta=2.0)
case("pad", "pad", [a], mx.pad(a, [(1, 0), (2, 1)], constant_values=0.5), lo=[1, 2], hi=[0, 1], value=0.5)

# fast
xn = arr((2, 3, 8))
wn = arr((8,))
bn = arr((8,))
case("rms_norm", "rms_norm", [xn, wn], mx.fast.rms_norm(xn, wn, 1e-5), eps=1e-5)
case("layer_norm", "layer_norm", [xn, wn, bn], mx.fast.layer_norm(xn, wn, bn, 1e-5), eps=1e-5)
xr = arr((1, 2, 5, 8))
case("rope", "rope", [xr], mx.fast.rope(xr, 8, traditional=False, base=10000.0, scale=1.0, offset=3),
     dims=8, traditional=False, base=10000.0, scale=1.0, offset=3)
case("rope_traditional", "rope", [xr], mx.fast.rope(xr, 6, traditional=True, base=500000.0, scale=0.5, offset=0),
     dims=6, traditional=True, base=500000.0, scale=0.5, offset=0)
freqs = mx.array(rng.uniform(1.0, 100.0, size=(4,)).astype(np.float32))
case("rope_freqs", "rope", [xr, freqs], mx.fast.rope(xr, 8, traditional=False, base=None, scale=1.0, offset=2, freqs=freqs),
     dims=8, traditional=False, scale=1.0, offset=2)
q, k, v = arr((1, 4, 5, 8)), arr((1, 2, 5, 8)), arr((1, 2, 5, 8))
case("sdpa_causal_gqa", "sdpa", [q, k, v], mx.fast.scaled_dot_product_attention(q, k, v, scale=0.35, mask="causal"),
     scale=0.35, mask="causal")
case("sdpa_nomask", "sdpa", [q, k, v], mx.fast.scaled_dot_product_attention(q, k, v, scale=0.35), scale=0.35, mask="")
am = arr((5, 5))
case("sdpa_array_mask", "sdpa", [q, k, v, am], mx.fast.scaled_dot_product_attention(q, k, v, scale=0.35, mask=am),
     scale=0.35, mask="array")

# quantization
for gs, bits in [(32, 4), (64, 4), (128, 4), (64, 2), (64, 3), (64, 5), (64, 6), (64, 8)]:
    w = arr((4, 256))
    wq, s, bb = mx.quantize(w, group_size=gs, bits=bits)
    case(f"quantize_g{gs}_b{bits}", "quantize", [w], [wq, s, bb], group_size=gs, bits=bits)
    xq = arr((2, 256))
    case(f"quantized_matmul_g{gs}_b{bits}", "quantized_matmul", [xq, wq, s, bb],
         mx.quantized_matmul(xq, wq, s, bb, transpose=True, group_size=gs, bits=bits),
         group_size=gs, bits=bits, transpose=True)
    case(f"dequantize_g{gs}_b{bits}", "dequantize", [wq, s, bb],
         mx.dequantize(wq, s, bb, group_size=gs, bits=bits), group_size=gs, bits=bits)

# random with explicit keys
key = mx.random.key(42)
case("random_key", "random_key", [], key, seed=42)
case("random_split", "random_split", [key], mx.random.split(key, 3), num=3)
case("random_uniform", "random_uniform", [key], mx.random.uniform(-1.0, 2.0, (3, 4), key=key),
     low=-1.0, high=2.0, shape=[3, 4])
case("random_normal", "random_normal", [key], mx.random.normal((3, 4), key=key), shape=[3, 4])
case("random_bernoulli", "random_bernoulli", [key], mx.random.bernoulli(0.3, (4, 5), key=key), p=0.3, shape=[4, 5])


# autograd: a composite function and its gradients
def composite(x, w, bias):
    h = mx.tanh(x @ w + bias)
    p = mx.softmax(h, axis=-1)
    return mx.sum(p * mx.log(p + 1.0)) + mx.mean(mx.square(w))


gx, gw, gb = arr((3, 5)), arr((5, 4)), arr((4,))
val, grads = mx.value_and_grad(composite, argnums=(0, 1, 2))(gx, gw, gb)
case("value_and_grad", "value_and_grad", [gx, gw, gb], [val, *grads])

with open(os.path.join(HERE, "ops.json"), "w") as f:
    json.dump({"mlx_version": mx.__version__, "cases": cases}, f, separators=(",", ":"))

# A safetensors file of every dtype with metadata, written by Python mlx.
tensors = {
    "f32": arr((2, 3)), "f16": arr((3,), "float16"), "bf16": arr((2, 2), "bfloat16"),
    "i32": arr((4,), "int32"), "u32": arr((2, 2), "uint32"), "bool": arr((3,), "bool"),
    "u8": mx.array([0, 7, 255], dtype=mx.uint8), "i64": mx.array([-3, 1 << 40], dtype=mx.int64),
    "scalar": mx.array(3.5),
}
mx.save_safetensors(os.path.join(HERE, "python.safetensors"), tensors, metadata={"format": "mlx", "producer": "python"})
with open(os.path.join(HERE, "python_tensors.json"), "w") as f:
    json.dump({k: enc(v) for k, v in tensors.items()}, f, separators=(",", ":"))
print(f"{len(cases)} cases")
