"""Reference GGUF files and dequantizations from the gguf package (llama.cpp's own).

write DIR:  one small GGUF file per tensor type (DIR/<TYPE>.gguf), and beside each the
            gguf package's dequantization of every tensor as raw float32 (<TYPE>.<tensor>.f32).
hash FILE:  for every tensor of FILE, the sha256 of its float32 dequantization, as JSON.
"""
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

# Types the gguf package can quantize itself; for the others, random blocks with sane scales.
QUANTIZABLE = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1]
# Offsets of the float16 scales (d, dmin) in each block of the types written as random blocks.
# IQ1_M's d is spread over the top nibbles of its four u16 scales at 48 (see random_blocks).
HALF_FIELDS = {
    T.Q5_0: [0], T.Q5_1: [0, 2], T.Q2_K: [80, 82], T.Q3_K: [108],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ4_NL: [0], T.IQ4_XS: [0], T.IQ2_XXS: [0], T.IQ2_XS: [0], T.IQ2_S: [0],
    T.IQ3_XXS: [0], T.IQ3_S: [0], T.IQ1_S: [0], T.IQ1_M: [],
    # The E8M0 and E4M3 scales of MXFP4 and NVFP4 are finite for every byte.
    T.TQ1_0: [52], T.TQ2_0: [64], T.MXFP4: [], T.NVFP4: [],
}


def random_blocks(rng, qtype, rows, cols):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    for off in HALF_FIELDS[qtype]:
        h = (rng.standard_normal((rows, cols // block)) * 0.01).astype(np.float16)
        raw[:, :, off:off + 2] = h.view(np.uint8).reshape(rows, cols // block, 2)
    if qtype == T.IQ1_M:
        d = (rng.standard_normal((rows, cols // block)) * 0.01).astype(np.float16).view(np.uint16)
        sc = raw[:, :, 48:56].copy().view(np.uint16)
        for i in range(4):
            sc[..., i] = (sc[..., i] & 0x0FFF) | (((d >> (4 * i)) & 0xF) << 12)
        raw[:, :, 48:56] = sc.view(np.uint8)
    if qtype == T.NVFP4:  # E4M3's zeros, subnormals, normals and the ignored top bit
        raw[0, :2, :4] = np.array([[0x00, 0x7F, 0x01, 0x07], [0x08, 0x80, 0xFF, 0xFE]], dtype=np.uint8)
    return raw.reshape(rows, -1)


def write(out):
    rng = np.random.default_rng(0)
    for qtype in QUANTIZABLE + list(HALF_FIELDS):
        path = os.path.join(out, f"{qtype.name}.gguf")
        w = gguf.GGUFWriter(path, "llama")
        w.add_uint32("test.answer", 42)
        w.add_array("test.words", ["a", "bé", "日本"])
        shapes = {"a.weight": (4, 512), "b.weight": (3, 256)}
        for name, (rows, cols) in shapes.items():
            if qtype in HALF_FIELDS:
                w.add_tensor(name, random_blocks(rng, qtype, rows, cols), raw_dtype=qtype)
            else:
                data = (rng.standard_normal((rows, cols)) * 0.1).astype(np.float32)
                data[0, :4] = [0.0, -0.0, 1e-7, 65504.0]
                if qtype == T.F32:
                    w.add_tensor(name, data)
                else:
                    w.add_tensor(name, quantize(data, qtype), raw_dtype=qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        for t in gguf.GGUFReader(path).tensors:
            deq = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
            deq.tofile(os.path.join(out, f"{qtype.name}.{t.name}.f32"))


def hashes(path):
    out = {}
    for t in gguf.GGUFReader(path).tensors:
        deq = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        out[t.name] = {"sha256": hashlib.sha256(deq.tobytes()).hexdigest(), "type": t.tensor_type.name,
                       "shape": [int(d) for d in deq.shape]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    {"write": write, "hash": hashes}[sys.argv[1]](sys.argv[2])
