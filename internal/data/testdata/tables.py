"""Writes the rows of a JSONL file as the Hugging Face tools store datasets, for the Parquet
and Arrow readers' tests.

usage: tables.py SRC.jsonl OUT [--tools-json] [--row-group N]

OUT/expected/train.jsonl  the rows as a table holds them: every column in every row (null
                          where a row lacks it), in the table's column order
OUT/file/train.parquet    one file, written by datasets' Dataset.to_parquet (snappy)
OUT/hub/data/train-0000{0,1}-of-00002.parquet
                          two shards by pyarrow.parquet.write_table, zstd and snappy, in row
                          groups of N rows (default 2)
OUT/arrow/                Dataset.save_to_disk in two shards
OUT/dict/{train,validation}/
                          DatasetDict.save_to_disk, validation holding the same rows

With --tools-json the tables hold the "tools" column as the JSON text of each row's tools
(expected/ keeps the list).
"""

import json
import os
import sys

import datasets
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    src, out = sys.argv[1], sys.argv[2]
    tools_json = "--tools-json" in sys.argv
    group = 2
    if "--row-group" in sys.argv:
        group = int(sys.argv[sys.argv.index("--row-group") + 1])
    with open(src) as f:
        rows = [json.loads(line) for line in f if line.strip()]

    # from_pylist and Dataset.from_list take the first row's columns only: give each row all
    columns = list(dict.fromkeys(k for row in rows for k in row))
    rows = [{k: row.get(k) for k in columns} for row in rows]
    table = pa.Table.from_pylist(rows)
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    with open(os.path.join(out, "expected", "train.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")

    if tools_json:
        texts = [None if r.get("tools") is None else json.dumps(r["tools"]) for r in rows]
        i = table.column_names.index("tools")
        table = table.set_column(i, "tools", pa.array(texts, pa.string()))

    ds = datasets.Dataset(datasets.table.InMemoryTable(table))
    os.makedirs(os.path.join(out, "file"), exist_ok=True)
    ds.to_parquet(os.path.join(out, "file", "train.parquet"))

    hub = os.path.join(out, "hub", "data")
    os.makedirs(hub, exist_ok=True)
    half = (len(rows) + 1) // 2
    for i, (part, codec) in enumerate([(table.slice(0, half), "zstd"), (table.slice(half), "snappy")]):
        pq.write_table(part, os.path.join(hub, f"train-{i:05d}-of-00002.parquet"),
                       compression=codec, row_group_size=group)

    ds.save_to_disk(os.path.join(out, "arrow"), num_shards=min(2, len(rows)))
    datasets.DatasetDict({"train": ds, "validation": ds}).save_to_disk(os.path.join(out, "dict"))


if __name__ == "__main__":
    main()
