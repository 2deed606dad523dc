package modeldir

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/yai-dev/yai/internal/atomicfile"
)

// TensorInfo is one tensor as a safetensors header describes it; no weights are read.
type TensorInfo struct {
	Dtype       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
	File        string   `json:"-"`
}

// Bytes is the tensor's size in the file.
func (t TensorInfo) Bytes() int64 { return t.DataOffsets[1] - t.DataOffsets[0] }

// maxHeader bounds the JSON header we are willing to read (real ones are well under 10 MB).
const maxHeader = 100 << 20

// Shard is one safetensors file as its header and size describe it.
type Shard struct {
	Path      string
	HeaderLen int64 // bytes of JSON after the 8-byte length
	Size      int64 // the file's size in bytes
	Tensors   map[string]TensorInfo
}

// DataBytes is the size of the data region after the header.
func (s *Shard) DataBytes() int64 { return s.Size - 8 - s.HeaderLen }

// ReadShard reads only the header of a safetensors file: an 8-byte little-endian length
// followed by that many bytes of JSON, and the file's size. Offsets are checked later,
// against the size (see CheckShard).
func ReadShard(path string) (*Shard, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("%s: not a safetensors file: %d bytes, shorter than the 8-byte header length", path, st.Size())
	}
	if n == 0 || n > maxHeader || int64(n) > st.Size()-8 {
		return nil, fmt.Errorf("%s: not a safetensors file (header length %d, file size %d)", path, n, st.Size())
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("%s: short safetensors header: %w", path, err)
	}
	tensors, err := ParseSafetensorsHeader(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for name, t := range tensors {
		t.File = path
		tensors[name] = t
	}
	return &Shard{Path: path, HeaderLen: int64(n), Size: st.Size(), Tensors: tensors}, nil
}

// ReadSafetensorsHeader reads the tensors of a safetensors file's header.
func ReadSafetensorsHeader(path string) (map[string]TensorInfo, error) {
	s, err := ReadShard(path)
	if err != nil {
		return nil, err
	}
	return s.Tensors, nil
}

// ParseSafetensorsHeader decodes a header's JSON: every entry but __metadata__ is a tensor
// with a known dtype, a shape of non-negative dimensions and ordered data offsets.
func ParseSafetensorsHeader(buf []byte) (map[string]TensorInfo, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(buf, &raw); err != nil {
		return nil, fmt.Errorf("bad safetensors header: %w", err)
	}
	out := make(map[string]TensorInfo, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var t TensorInfo
		if err := json.Unmarshal(msg, &t); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		if _, ok := DtypeSize(t.Dtype); !ok {
			return nil, fmt.Errorf("tensor %s: unknown dtype %q", name, t.Dtype)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %s: negative dimension in shape %v", name, t.Shape)
			}
		}
		if t.DataOffsets[0] < 0 || t.DataOffsets[1] < t.DataOffsets[0] {
			return nil, fmt.Errorf("tensor %s: data offsets %v are out of order", name, t.DataOffsets)
		}
		out[name] = t
	}
	return out, nil
}

// DtypeSize is the size in bytes of one element of a safetensors dtype.
func DtypeSize(dtype string) (int64, bool) {
	switch dtype {
	case "BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2":
		return 1, true
	case "U16", "I16", "F16", "BF16":
		return 2, true
	case "U32", "I32", "F32":
		return 4, true
	case "U64", "I64", "F64":
		return 8, true
	}
	return 0, false
}

// Elements is the number of elements of the tensor's shape, or -1 when it overflows.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		if d != 0 && n > math.MaxInt64/d {
			return -1
		}
		n *= d
	}
	return n
}

// WriteSafetensorsHeader writes a safetensors file holding only a header (no data), the shape
// of a real model without its weights: enough for `yai validate`.
func WriteSafetensorsHeader(path string, tensors map[string]TensorInfo) error {
	hdr := map[string]any{}
	for name, t := range tensors {
		hdr[name] = t
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	return atomicfile.Write(path, append(buf, js...), 0o644)
}
