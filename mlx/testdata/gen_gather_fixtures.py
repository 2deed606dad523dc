"""Records reference results from the Python mlx and mlx-lm packages for the gather ops that
mixture-of-experts layers use (gather_mm, gather_qmm, argpartition and the reshapes around
them), and for mlx-lm's own MoE blocks built from them.

Run with the pinned packages (go tool task setup installs them):
    .venv/bin/python mlx/testdata/gen_gather_fixtures.py
Computes on the CPU, so that the Go side can require bit-identical results there, and writes
beside this file gather.safetensors (case NAME's inputs as NAME.in0, NAME.in1, ..., its outputs
as NAME.out0, ...) and gather.json (each case's op, parameters and counts of inputs and outputs).
"""

import json
import os
from types import SimpleNamespace

import mlx.core as mx
import numpy as np
from mlx_lm.models.mixtral import MixtralSparseMoeBlock
from mlx_lm.models.qwen3_moe import Qwen3MoeSparseMoeBlock

mx.set_default_device(mx.cpu)
HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(4321)


def arr(shape, dtype="float32", low=-1.0, high=1.0):
    return mx.array(rng.uniform(low, high, size=shape).astype(np.float32)).astype(getattr(mx, dtype))


def experts(num, shape, sort=False):
    """Expert indices in [0, num) of the given shape, uint32 like argpartition's."""
    idx = rng.integers(0, num, size=shape).astype(np.uint32)
    if sort:
        idx = np.sort(idx.reshape(-1)).reshape(shape)
    return mx.array(idx)


cases = []
tensors = {}


def case(name, op, inputs, out, **params):
    outs = out if isinstance(out, (list, tuple)) else [out]
    mx.eval(outs)
    assert not any(c["name"] == name for c in cases), name
    for i, a in enumerate(inputs):
        tensors[f"{name}.in{i}"] = mx.contiguous(a)
    for i, a in enumerate(outs):
        tensors[f"{name}.out{i}"] = a
    cases.append({"name": name, "op": op, "inputs": len(inputs), "outputs": len(outs), "params": params})


def gather_mm_case(name, a, b, lhs=None, rhs=None, sorted_indices=False):
    inputs = [a, b] + [i for i in (lhs, rhs) if i is not None]
    out = mx.gather_mm(a, b, lhs_indices=lhs, rhs_indices=rhs, sorted_indices=sorted_indices)
    case(name, "gather_mm", inputs, out, has_lhs=lhs is not None, has_rhs=rhs is not None,
         sorted_indices=sorted_indices)


def gather_qmm_case(name, x, w, gs, bits, mode="affine", lhs=None, rhs=None, transpose=True,
                    sorted_indices=False):
    wq, scales, *biases = mx.quantize(w, group_size=gs, bits=bits, mode=mode)
    biases = biases[0] if biases else None
    inputs = [x, wq, scales] + ([biases] if biases is not None else [])
    inputs += [i for i in (lhs, rhs) if i is not None]
    out = mx.gather_qmm(x, wq, scales, biases, lhs_indices=lhs, rhs_indices=rhs,
                        transpose=transpose, group_size=gs, bits=bits, mode=mode,
                        sorted_indices=sorted_indices)
    case(name, "gather_qmm", inputs, out, group_size=gs, bits=bits, mode=mode,
         has_biases=biases is not None, has_lhs=lhs is not None, has_rhs=rhs is not None,
         transpose=transpose, sorted_indices=sorted_indices)


E, B, L, K = 4, 2, 3, 2

# gather_mm as SwitchLinear calls it: x expanded to (B, L, 1, 1, D), the expert weights
# (E, out, in) swapped to (E, in, out), indices (B, L, k).
w = arr((E, 8, 16))
x = mx.expand_dims(arr((B, L, 16)), (-2, -3))
gather_mm_case("gather_mm_switch_unsorted", x, w.swapaxes(-1, -2), rhs=experts(E, (B, L, K)))
# ... and after _gather_sort: (B*L*k, 1, D) rows with sorted indices (B*L*k,).
gather_mm_case("gather_mm_switch_sorted", arr((B * L * K, 1, 16)), w.swapaxes(-1, -2),
               rhs=experts(E, (B * L * K,), sort=True), sorted_indices=True)
gather_mm_case("gather_mm_switch_sorted_flag_off", arr((B * L * K, 1, 16)), w.swapaxes(-1, -2),
               rhs=experts(E, (B * L * K,), sort=True), sorted_indices=False)
gather_mm_case("gather_mm_lhs_rhs", arr((3, 2, 16)), arr((E, 16, 8)),
               lhs=mx.array([2, 0, 1, 1, 0], dtype=mx.int32), rhs=mx.array([3, 3, 0, 1, 2], dtype=mx.int32))
gather_mm_case("gather_mm_lhs_only", arr((3, 2, 16)), arr((16, 8)),
               lhs=mx.array([[2, 0], [1, 1]], dtype=mx.int32))
gather_mm_case("gather_mm_no_indices", arr((2, 3, 16)), arr((2, 16, 5)))
# (MLX's CPU backend runs gather_mm in float32 only.)

# gather_qmm as QuantizedSwitchLinear calls it: weights (E, out, in) quantized along in.
for gs, bits in [(64, 4), (32, 8)]:
    wf = arr((E, 32, 128))
    xq = mx.expand_dims(arr((B, L, 128)), (-2, -3))
    gather_qmm_case(f"gather_qmm_g{gs}_b{bits}_unsorted", xq, wf, gs, bits, rhs=experts(E, (B, L, K)))
    gather_qmm_case(f"gather_qmm_g{gs}_b{bits}_sorted", arr((B * L * K, 1, 128)), wf, gs, bits,
                    rhs=experts(E, (B * L * K,), sort=True), sorted_indices=True)
    gather_qmm_case(f"gather_qmm_g{gs}_b{bits}_lhs_rhs", arr((3, 2, 128)), wf, gs, bits,
                    lhs=mx.array([2, 0, 1, 1, 0], dtype=mx.int32), rhs=mx.array([3, 3, 0, 1, 2], dtype=mx.int32))
    gather_qmm_case(f"gather_qmm_g{gs}_b{bits}_no_transpose", arr((B, L, 1, 1, 32)), arr((E, 32, 128)), gs, bits,
                    rhs=experts(E, (B, L, K)), transpose=False)
    gather_qmm_case(f"gather_qmm_g{gs}_b{bits}_bf16", xq.astype(mx.bfloat16), wf.astype(mx.bfloat16), gs, bits,
                    rhs=experts(E, (B, L, K)))
gather_qmm_case("gather_qmm_mxfp4_no_biases", mx.expand_dims(arr((B, L, 64)), (-2, -3)), arr((E, 32, 64)),
                32, 4, mode="mxfp4", rhs=experts(E, (B, L, K)))

# argpartition as the routers call it.
g = arr((B, L, 8))
case("argpartition_mixtral", "argpartition", [-g], mx.argpartition(-g, kth=K - 1, axis=-1), kth=K - 1, axis=-1)
case("argpartition_qwen3", "argpartition", [g], mx.argpartition(g, kth=-K, axis=-1), kth=-K, axis=-1)
case("argpartition_axis0", "argpartition", [g], mx.argpartition(g, kth=1, axis=0), kth=1, axis=0)
ties = mx.array([[1, 3, 3, 0, 3, 1, 2, 3]], dtype=mx.float32)
case("argpartition_ties", "argpartition", [ties], mx.argpartition(ties, kth=-3, axis=-1), kth=-3, axis=-1)

# the reshapes around them
r = arr((2, 3, 4, 5))
case("flatten_0_m3", "flatten", [r], r.flatten(0, -3), start_axis=0, end_axis=-3)
case("flatten_all", "flatten", [r], r.flatten(), start_axis=0, end_axis=-1)
case("unflatten", "unflatten", [r.flatten(0, 1)], mx.unflatten(r.flatten(0, 1), 0, (2, 3)), axis=0, shape=[2, 3])
case("unflatten_infer", "unflatten", [r], mx.unflatten(r, -1, (-1, 1)), axis=-1, shape=[-1, 1])
case("swapaxes", "swapaxes", [r], r.swapaxes(-1, -2), axis1=-1, axis2=-2)
case("moveaxis", "moveaxis", [r], mx.moveaxis(r, 0, -1), source=0, destination=-1)


# mlx-lm's MoE blocks end to end: the router, SwitchGLU (unsorted below 64 routed rows,
# sorted from 64) and, quantized, QuantizedSwitchLinear.
def moe_block(kind, D, H, nexp, k, quant=None):
    a = SimpleNamespace(hidden_size=D, moe_intermediate_size=H, intermediate_size=H, num_experts=nexp,
                        num_local_experts=nexp, num_experts_per_tok=k, norm_topk_prob=True)
    blk = Qwen3MoeSparseMoeBlock(a) if kind == "qwen3" else MixtralSparseMoeBlock(a)
    blk.gate.weight = arr((nexp, D))
    sw = blk.switch_mlp
    for p in (sw.gate_proj, sw.up_proj, sw.down_proj):
        p.weight = arr(p.weight.shape)
    if quant is not None:
        for n in ("gate_proj", "up_proj", "down_proj"):
            setattr(sw, n, getattr(sw, n).to_quantized(group_size=quant[0], bits=quant[1]))
    return blk


def moe_inputs(blk, quant):
    sw = blk.switch_mlp
    ins = [blk.gate.weight]
    for p in (sw.gate_proj, sw.up_proj, sw.down_proj):
        ins += [p.weight, p.scales, p.biases] if quant is not None else [p.weight]
    return ins


for kind in ("qwen3", "mixtral"):
    for quant in (None, (64, 4), (32, 8)):
        blk = moe_block(kind, 64, 64, E, K, quant)
        # 3 tokens route 3*k rows, which SwitchGLU leaves unsorted; 40 route 80, which it sorts.
        x3, x40 = arr((1, 3, 64)), arr((1, 40, 64))
        qname = "" if quant is None else f"_g{quant[0]}_b{quant[1]}"
        params = dict(kind=kind, k=K)
        if quant is not None:
            params.update(group_size=quant[0], bits=quant[1])
        case(f"moe_{kind}{qname}", "moe_block", [x3, x40] + moe_inputs(blk, quant), [blk(x3), blk(x40)], **params)


# Gradients through gather_mm (x and the experts) and gather_qmm (x, scales and biases: MLX
# has none for the packed weights), as value_and_grad
# takes them; cot makes the loss weigh every output element differently.
def grad_cases():
    xg = mx.expand_dims(arr((B, L, 16)), (-2, -3))
    wg = arr((E, 8, 16)).swapaxes(-1, -2)
    for sort in (False, True):
        if sort:
            xs, idx = arr((B * L * K, 1, 16)), experts(E, (B * L * K,), sort=True)
        else:
            xs, idx = xg, experts(E, (B, L, K))
        cot = arr(mx.gather_mm(xs, wg, rhs_indices=idx).shape)

        def f(a, b, idx, cot):
            return mx.sum(mx.gather_mm(a, b, rhs_indices=idx, sorted_indices=sort) * cot)

        val, grads = mx.value_and_grad(f, argnums=(0, 1))(xs, wg, idx, cot)
        case(f"grad_gather_mm_{'sorted' if sort else 'unsorted'}", "grad_gather_mm", [xs, wg, idx, cot],
             [val, *grads], sorted_indices=sort)

    for gs, bits in [(64, 4), (32, 8)]:
        wq, s, bb = mx.quantize(arr((E, 32, 128)), group_size=gs, bits=bits)
        for sort in (False, True):
            if sort:
                xs, idx = arr((B * L * K, 1, 128)), experts(E, (B * L * K,), sort=True)
            else:
                xs, idx = mx.expand_dims(arr((B, L, 128)), (-2, -3)), experts(E, (B, L, K))
            cot = arr(mx.gather_qmm(xs, wq, s, bb, rhs_indices=idx, group_size=gs, bits=bits).shape)

            def fq(x, wq, s, bb, idx, cot):
                y = mx.gather_qmm(x, wq, s, bb, rhs_indices=idx, transpose=True, group_size=gs, bits=bits,
                                  sorted_indices=sort)
                return mx.sum(y * cot)

            val, grads = mx.value_and_grad(fq, argnums=(0, 2, 3))(xs, wq, s, bb, idx, cot)
            case(f"grad_gather_qmm_g{gs}_b{bits}_{'sorted' if sort else 'unsorted'}", "grad_gather_qmm",
                 [xs, wq, s, bb, idx, cot], [val, *grads], group_size=gs, bits=bits, sorted_indices=sort)

    # The whole qwen3 block, sorted path, differentiated with respect to x and the experts.
    blk = moe_block("qwen3", 64, 64, E, K)
    xm = arr((1, 40, 64))
    sw = blk.switch_mlp
    cot = arr((1, 40, 64))

    def fb(x, gw, wg, wu, wd, cot):
        blk.gate.weight, sw.gate_proj.weight, sw.up_proj.weight, sw.down_proj.weight = gw, wg, wu, wd
        return mx.sum(blk(x) * cot)

    ins = [xm, blk.gate.weight, sw.gate_proj.weight, sw.up_proj.weight, sw.down_proj.weight, cot]
    val, grads = mx.value_and_grad(fb, argnums=(0, 1, 2, 3, 4))(*ins)
    case("grad_moe_qwen3_40tok", "grad_moe_block", ins, [val, *grads], kind="qwen3", k=K)


grad_cases()

mx.save_safetensors(os.path.join(HERE, "gather.safetensors"), tensors)
with open(os.path.join(HERE, "gather.json"), "w") as f:
    json.dump({"mlx_version": mx.__version__, "cases": cases}, f, indent=1)
print(f"{len(cases)} cases, {len(tensors)} tensors")
