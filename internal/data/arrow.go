package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/yai-dev/yai/internal/tokenizer"
)

// Parquet files (as pyarrow and the Hugging Face hub write them) and Arrow IPC files (as
// datasets' save_to_disk writes them) are read record batch by record batch, and every row
// becomes the value the JSONL reader gives the same row written as JSON: an object with the
// columns as keys in column order, lists as arrays, structs as objects, numbers as Python's
// json writes them. From there on they are JSONL rows: format detection, conversion, masking
// and tokenization are shared.

// Bounds on what one file may make the reader allocate: a corrupt file declaring a huge page
// or message is an error, not an exhausted machine. Variables so that tests can lower them.
var (
	maxTableAlloc   = 1 << 30 // bytes in one buffer
	maxTableLive    = 4 << 30 // bytes held at once
	tableBatchRows  = int64(1024)
	maxTableNesting = 64
)

// errTooLarge is what the capped allocator panics with; readTableFile turns it into an error.
var errTooLarge = errors.New("the file asks for more memory than a dataset file may use; it is corrupt or too large")

// cappedAllocator refuses allocations past the bounds above.
type cappedAllocator struct {
	mem  memory.Allocator
	live atomic.Int64
}

func (a *cappedAllocator) check(size, grow int) {
	if size < 0 || size > maxTableAlloc || a.live.Load()+int64(grow) > int64(maxTableLive) {
		panic(errTooLarge)
	}
}

func (a *cappedAllocator) Allocate(size int) []byte {
	a.check(size, size)
	a.live.Add(int64(size))
	return a.mem.Allocate(size)
}

func (a *cappedAllocator) Reallocate(size int, b []byte) []byte {
	a.check(size, size-len(b))
	a.live.Add(int64(size - len(b)))
	return a.mem.Reallocate(size, b)
}

func (a *cappedAllocator) Free(b []byte) {
	a.live.Add(-int64(len(b)))
	a.mem.Free(b)
}

// tableKind is how a file holds its rows.
type tableKind int

const (
	kindJSONL tableKind = iota
	kindParquet
	kindArrow
)

var parquetMagic, arrowFileMagic = []byte("PAR1"), []byte("ARROW1")

// kindOf tells the reader of a file from its name and, for Parquet and Arrow, its magic.
func kindOf(path string) tableKind {
	switch filepath.Ext(path) {
	case ".parquet":
		return kindParquet
	case ".arrow":
		return kindArrow
	}
	return kindJSONL
}

// readTableFile reads the rows of one Parquet or Arrow file, calling add for each in order.
// A file that cannot be read (truncated, corrupt, of a type with no JSON value) is one error
// naming it; a panic of the Arrow library is recovered into that error.
func readTableFile(path string, kind tableKind, add func(*tokenizer.Object)) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	what := "Parquet"
	if kind == kindArrow {
		what = "Arrow"
	}
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok && errors.Is(e, errTooLarge) {
				err = fmt.Errorf("%s: %w", path, errTooLarge)
				return
			}
			err = fmt.Errorf("%s: not a readable %s file (%v)", path, what, p)
		}
	}()
	mem := &cappedAllocator{mem: memory.NewGoAllocator()}
	var records func(yield func(arrow.RecordBatch) bool) error
	if kind == kindParquet {
		records, err = parquetRecords(f, mem)
	} else {
		records, err = arrowRecords(f, mem)
	}
	if err != nil {
		return fmt.Errorf("%s: not a readable %s file: %v", path, what, err)
	}
	var convErr error
	err = records(func(rec arrow.RecordBatch) bool {
		if convErr = recordRows(rec, add); convErr != nil {
			return false
		}
		return true
	})
	if convErr != nil {
		return fmt.Errorf("%s: %v", path, convErr)
	}
	if err != nil {
		return fmt.Errorf("%s: not a readable %s file: %v", path, what, err)
	}
	return nil
}

// parquetRecords reads a Parquet file's row groups in batches of tableBatchRows rows, serially
// (a panic in a goroutine of the library could not be recovered).
func parquetRecords(f *os.File, mem memory.Allocator) (func(func(arrow.RecordBatch) bool) error, error) {
	props := parquet.NewReaderProperties(mem)
	pf, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkParquetSizes(pf, st.Size()); err != nil {
		pf.Close()
		return nil, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: tableBatchRows}, mem)
	if err != nil {
		pf.Close()
		return nil, err
	}
	return func(yield func(arrow.RecordBatch) bool) error {
		defer pf.Close()
		if pf.NumRows() == 0 {
			return nil
		}
		rr, err := fr.GetRecordReader(context.Background(), nil, nil)
		if err != nil {
			return err
		}
		defer rr.Release()
		for {
			rec, err := rr.Read()
			if rec != nil && rec.NumRows() > 0 && !yield(rec) {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if rec == nil {
				return nil
			}
		}
	}, nil
}

// checkParquetSizes bounds what the footer declares before anything is read from it: row
// counts and column chunks the file cannot hold.
func checkParquetSizes(pf *file.Reader, size int64) error {
	md := pf.MetaData()
	if md.NumRows < 0 {
		return fmt.Errorf("the footer declares %d rows", md.NumRows)
	}
	for i := range md.NumRowGroups() {
		rg := md.RowGroup(i)
		if rg.NumRows() < 0 {
			return fmt.Errorf("row group %d declares %d rows", i, rg.NumRows())
		}
		for c := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				return err
			}
			if cc.TotalCompressedSize() < 0 || cc.TotalCompressedSize() > size || cc.TotalUncompressedSize() < 0 || cc.TotalUncompressedSize() > int64(maxTableAlloc) {
				return fmt.Errorf("row group %d, column %d: a column chunk of %d bytes (%d compressed) in a file of %d bytes",
					i, c, cc.TotalUncompressedSize(), cc.TotalCompressedSize(), size)
			}
		}
	}
	return nil
}

// arrowRecords reads an Arrow IPC stream (datasets' .arrow files), or the stream inside an
// Arrow IPC file (Feather v2, after its magic), one record batch at a time.
func arrowRecords(f *os.File, mem memory.Allocator) (func(func(arrow.RecordBatch) bool) error, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	start := int64(0)
	if bytes.HasPrefix(head[:n], arrowFileMagic) {
		start = 8 // the magic, padded to 8 bytes
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, err
	}
	r, err := ipc.NewReaderFromMessageReader(newCheckedMessages(f, size-start), ipc.WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	return func(yield func(arrow.RecordBatch) bool) error {
		defer r.Release()
		for r.Next() {
			if !yield(r.RecordBatch()) {
				return nil
			}
		}
		return r.Err()
	}, nil
}

// recordRows converts each row of a record batch.
func recordRows(rec arrow.RecordBatch, add func(*tokenizer.Object)) error {
	schema := rec.Schema()
	cols := rec.Columns()
	for i := range int(rec.NumRows()) {
		row := &tokenizer.Object{Keys: make([]string, 0, len(cols)), Values: make(map[string]any, len(cols))}
		for c, col := range cols {
			name := schema.Field(c).Name
			v, err := arrowValue(col, i, 0)
			if err != nil {
				return fmt.Errorf("column %q: %v", name, err)
			}
			if _, dup := row.Values[name]; !dup {
				row.Keys = append(row.Keys, name)
			}
			row.Values[name] = v
		}
		add(row)
	}
	return nil
}

// arrowValue is element i of arr as the JSONL reader's value: nil, bool, json.Number, string,
// []any or *tokenizer.Object. A struct's null fields are left out: Arrow gives every struct of
// a column all the fields any of them has (a turn without tool_calls reads as one with
// tool_calls: null), which is not what the row said.
func arrowValue(arr arrow.Array, i, depth int) (any, error) {
	if depth > maxTableNesting {
		return nil, fmt.Errorf("nested more than %d levels deep", maxTableNesting)
	}
	if i < 0 || i >= arr.Len() {
		return nil, fmt.Errorf("row %d of an array of %d", i, arr.Len())
	}
	if arr.IsNull(i) {
		return nil, nil
	}
	switch a := arr.(type) {
	case *array.Null:
		return nil, nil
	case *array.Boolean:
		return a.Value(i), nil
	case *array.Int8:
		return intNumber(int64(a.Value(i))), nil
	case *array.Int16:
		return intNumber(int64(a.Value(i))), nil
	case *array.Int32:
		return intNumber(int64(a.Value(i))), nil
	case *array.Int64:
		return intNumber(a.Value(i)), nil
	case *array.Uint8:
		return uintNumber(uint64(a.Value(i))), nil
	case *array.Uint16:
		return uintNumber(uint64(a.Value(i))), nil
	case *array.Uint32:
		return uintNumber(uint64(a.Value(i))), nil
	case *array.Uint64:
		return uintNumber(a.Value(i)), nil
	case *array.Float16:
		return floatNumber(float64(a.Value(i).Float32())), nil
	case *array.Float32:
		return floatNumber(float64(a.Value(i))), nil
	case *array.Float64:
		return floatNumber(a.Value(i)), nil
	case *array.String:
		return a.Value(i), nil
	case *array.LargeString:
		return a.Value(i), nil
	case *array.StringView:
		return a.Value(i), nil
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		values := a.ListValues()
		if start < 0 || end < start || end > int64(values.Len()) {
			return nil, fmt.Errorf("list offsets %d..%d outside %d values", start, end, values.Len())
		}
		out := make([]any, 0, end-start)
		for j := start; j < end; j++ {
			v, err := arrowValue(values, int(j), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		obj := &tokenizer.Object{Values: map[string]any{}}
		for f := range a.NumField() {
			v, err := arrowValue(a.Field(f), i, depth+1)
			if err != nil {
				return nil, err
			}
			if v == nil {
				continue
			}
			name := st.Field(f).Name
			if _, dup := obj.Values[name]; !dup {
				obj.Keys = append(obj.Keys, name)
			}
			obj.Values[name] = v
		}
		return obj, nil
	case *array.Dictionary:
		return arrowValue(a.Dictionary(), a.GetValueIndex(i), depth+1)
	}
	return nil, fmt.Errorf("values of type %s have no JSON form", arr.DataType())
}

func intNumber(v int64) json.Number   { return json.Number(strconv.FormatInt(v, 10)) }
func uintNumber(v uint64) json.Number { return json.Number(strconv.FormatUint(v, 10)) }

// floatNumber writes f as Python's json.dumps does (float.__repr__: the shortest digits that
// round-trip, fixed notation for exponents from -4 to 15 with ".0" on whole numbers,
// otherwise e+XX), so a number reads the same as in the JSONL file Python would write.
func floatNumber(f float64) json.Number {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return json.Number(e)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return json.Number(s)
}
