# Text rows of CPython's own standard library, the data the CUDA benchmarks train on:
# train.jsonl (1,100 rows) and valid.jsonl (100) of 3,000 characters from one file each, or,
# given a length as the second argument, rows of that many characters cut from the library
# read as one text (as many as it holds, up to 1,200; the last 10% are valid.jsonl).
import glob, json, os, sys

out = sys.argv[1]
chars = int(sys.argv[2]) if len(sys.argv) > 2 else 0
os.makedirs(out, exist_ok=True)
rows = []
files = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))
if chars:
    text = "".join(open(f, encoding="utf-8", errors="replace").read() for f in files)
    rows = [json.dumps({"text": text[i:i + chars]}) for i in range(0, len(text) - chars, chars)][:1200]
    split = len(rows) - max(1, len(rows) // 10)
else:
    for f in files:
        src = open(f, encoding="utf-8", errors="replace").read()
        rows += [json.dumps({"text": src[i:i + 3000]}) for i in range(0, len(src) - 3000, 3000)]
        if len(rows) >= 1200:
            break
    split = 1100
# "x": never over a dataset already there
with open(os.path.join(out, "train.jsonl"), "x") as w:
    w.write("\n".join(rows[:split]) + "\n")
with open(os.path.join(out, "valid.jsonl"), "x") as w:
    w.write("\n".join(rows[split:1200]) + "\n")
