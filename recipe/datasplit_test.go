package recipe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// writeParquet writes rows of nullable string columns (nil is null) to a Parquet file.
func writeParquet(t *testing.T, path string, cols []string, rows ...[]*string) {
	t.Helper()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, row := range rows {
		for i, v := range row {
			if v == nil {
				b.Field(i).AppendNull()
			} else {
				b.Field(i).(*array.StringBuilder).Append(*v)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	tbl := array.NewTableFromRecords(schema, []arrow.RecordBatch{rec})
	defer tbl.Release()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// WriteTable closes f
	if err := pqarrow.WriteTable(tbl, f, 2, nil, pqarrow.DefaultWriterProps()); err != nil {
		t.Fatal(err)
	}
}

func s(v string) *string { return &v }

// alpacaShards writes the hub's layout of Alpaca rows into dir: two train shards and a
// validation shard; bad makes the third row of the second train shard lack its output.
func alpacaShards(t *testing.T, dir string, bad bool) {
	cols := []string{"instruction", "output"}
	row := func(i, o string) []*string { return []*string{s(i), s(o)} }
	writeParquet(t, filepath.Join(dir, "data", "train-00000-of-00002.parquet"), cols, row("Name a prime.", "7"), row("Say hi.", "hi"))
	last := row("Capital of France?", "Paris")
	if bad {
		last[1] = nil
	}
	writeParquet(t, filepath.Join(dir, "data", "train-00001-of-00002.parquet"), cols, row("2+2?", "4"), row("Colour of grass?", "Green."), last)
	writeParquet(t, filepath.Join(dir, "data", "validation-00000-of-00001.parquet"), cols, row("3+3?", "6"), row("Say yes.", "yes"))
}

// TestDataHubLayout: a data directory in the hub's Parquet layout validates as the JSONL one
// does, every shard is a data file of the run, and a bad row is named by shard and row.
func TestDataHubLayout(t *testing.T) {
	dir := t.TempDir()
	writeMalformedBase(t, dir)
	data := filepath.Join(dir, "data")
	os.Remove(filepath.Join(data, "train.jsonl"))
	os.Remove(filepath.Join(data, "valid.jsonl"))
	alpacaShards(t, data, false)
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, malformedRecipe)
	p, ds := Validate(path, nil, ValidateOptions{})
	if p == nil || len(ds) > 0 {
		t.Fatalf("hub layout:\n%s", ds.Format())
	}
	var names []string
	for _, f := range p.DataFiles() {
		rel, _ := filepath.Rel(data, f)
		names = append(names, filepath.ToSlash(rel))
	}
	want := "data/train-00000-of-00002.parquet data/train-00001-of-00002.parquet data/validation-00000-of-00001.parquet"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("data files %s, want %s", got, want)
	}

	alpacaShards(t, data, true)
	_, ds = Validate(path, nil, ValidateOptions{})
	wantDiag := strings.ReplaceAll(`$D/data/data/train-00001-of-00002.parquet: error: row 3: "output" must be a string, found null`, "$D", dir)
	if len(ds) == 0 || ds[0].String() != wantDiag {
		t.Errorf("a null output:\n%s\nwant %s", ds.Format(), wantDiag)
	}
}

// TestDataHubName: data: hf:owner/name is the dataset's snapshot in the hub cache.
func TestDataHubName(t *testing.T) {
	dir := t.TempDir()
	writeMalformedBase(t, dir)
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	repo := filepath.Join(cache, "datasets--acme--qa")
	alpacaShards(t, filepath.Join(repo, "snapshots", "0123abcd"), false)
	os.MkdirAll(filepath.Join(repo, "refs"), 0o755)
	writeFile(t, filepath.Join(repo, "refs", "main"), "0123abcd")
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, editRecipe("data: ./data", "data: hf:acme/qa"))
	p, ds := Validate(path, nil, ValidateOptions{})
	if p == nil || len(ds) > 0 {
		t.Fatalf("hf:acme/qa:\n%s", ds.Format())
	}
	if got, want := p.RunInfo().DataDir, filepath.Join(repo, "snapshots", "0123abcd"); got != want {
		t.Errorf("data directory %s, want %s", got, want)
	}
	writeFile(t, path, editRecipe("data: ./data", "data: hf:acme/missing"))
	_, ds = Validate(path, nil, ValidateOptions{})
	if len(ds) == 0 || !strings.Contains(ds[0].String(), filepath.Join(cache, "datasets--acme--missing", "refs", "main")) {
		t.Errorf("a dataset not in the cache:\n%s", ds.Format())
	}
}
