# Text rows of 3,000 characters of CPython's own standard library, the data the CUDA
# side-by-side trains both sides on: train.jsonl (1,100 rows) and valid.jsonl (100).
import glob, json, os, sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rows = []
for f in sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py"))):
    src = open(f, encoding="utf-8", errors="replace").read()
    rows += [json.dumps({"text": src[i:i + 3000]}) for i in range(0, len(src) - 3000, 3000)]
    if len(rows) >= 1200:
        break
# "x": never over a dataset already there
with open(os.path.join(out, "train.jsonl"), "x") as w:
    w.write("\n".join(rows[:1100]) + "\n")
with open(os.path.join(out, "valid.jsonl"), "x") as w:
    w.write("\n".join(rows[1100:1200]) + "\n")
