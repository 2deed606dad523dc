package ggufexport

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/gguf"
)

// tensorPlan is one tensor of an output file and how to compute its float32 values
// (row-major, numpy's shape).
type tensorPlan struct {
	gguf.NewTensor
	values func() ([]float32, error)
}

// dims is the GGML order of a row-major shape.
func dims(shape ...int) []uint64 {
	d := make([]uint64, len(shape))
	for i, s := range shape {
		d[len(shape)-1-i] = uint64(s)
	}
	return d
}

// writeGGUF writes a GGUF file at path (inside a directory being assembled), computing and
// encoding one tensor at a time so that only one is in memory.
func writeGGUF(path string, kvs []gguf.KV, plans []tensorPlan) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	tensors := make([]gguf.NewTensor, len(plans))
	for i, p := range plans {
		tensors[i] = p.NewTensor
	}
	err = gguf.Write(f, kvs, tensors, func(i int) ([]byte, error) {
		v, err := plans[i].values()
		if err != nil {
			return nil, err
		}
		return gguf.Quantize(plans[i].Type, v)
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// newDir assembles the files of an export in a directory that must not exist, which
// appears whole or not at all (see atomicfile.NewDir).
func newDir(out string, fill func(tmp string) error) error {
	return atomicfile.NewDir(out, func(tmp string) error {
		if err := fill(tmp); err != nil {
			return err
		}
		return atomicfile.Sync(tmp)
	})
}

func writeText(dir, name, text string) error {
	return os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
}

// f32Bytes is little-endian float32 data.
func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// fileType is general.file_type (llama_ftype) for a file whose matrices are t.
var fileType = map[gguf.TensorType]uint32{
	gguf.F32: 0, gguf.F16: 1, gguf.Q4_0: 2, gguf.Q4_1: 3, gguf.Q8_0: 7, gguf.Q5_0: 8, gguf.Q5_1: 9, gguf.BF16: 32,
}

// Types lists the tensor types a merged export can store its matrices as.
func Types() []gguf.TensorType {
	return []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q5_1, gguf.Q5_0, gguf.Q4_1, gguf.Q4_0}
}
