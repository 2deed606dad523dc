"""Quantizes float32 weights with the gguf package, for quantize_test.go.

usage: quantize_reference.py IN.f32 TYPE OUT   (row-major float32, rows of 256 values)
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType, quants

src, typ, out = sys.argv[1:4]
w = np.fromfile(src, dtype=np.float32).reshape(-1, 256)
q = quants.quantize(w, GGMLQuantizationType[typ])
np.ascontiguousarray(q).tofile(out)
