"""Reads exported GGUF files back with the gguf package, for export_test.go.

usage: check_files.py F32.gguf QUANT.gguf... -- OTHER.gguf...

Every file must read with GGUFReader. Each QUANT file's tensors must equal, byte for byte,
the gguf package's quantize of the same tensor of the F32 file (tensors it stores as F32
must be equal). Prints one JSON line: tensors checked per file and metadata per file.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType, quants

args = sys.argv[1:]
sep = args.index("--")
f32_path, quant_paths, others = args[0], args[1:sep], args[sep + 1:]


def read(path):
    r = GGUFReader(path)
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        v = f.contents()
        if isinstance(v, list) and len(v) > 8:
            v = f"{len(v)} items"
        meta[k] = v
    return r, meta


ref, _ = read(f32_path)
floats = {t.name: np.array(t.data, dtype=np.float32).reshape([int(d) for d in reversed(t.shape)]) for t in ref.tensors}
out = {"checked": {}, "meta": {}, "tensors": {}}
for path in quant_paths:
    r, meta = read(path)
    out["meta"][path] = meta
    n = 0
    for t in r.tensors:
        w = floats[t.name]
        if t.tensor_type == GGMLQuantizationType.F32:
            want = w.tobytes()
        else:
            want = np.ascontiguousarray(quants.quantize(w, t.tensor_type)).tobytes()
        got = np.asarray(t.data).tobytes()
        if got != want:
            sys.exit(f"{path}: tensor {t.name} ({t.tensor_type.name}) differs from the gguf package's quantization")
        n += 1
    out["checked"][path] = n
for path in others:
    r, meta = read(path)
    out["meta"][path] = meta
    out["tensors"][path] = {t.name: [t.tensor_type.name, [int(d) for d in t.shape]] for t in r.tensors}
print(json.dumps(out))
