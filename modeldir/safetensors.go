package modeldir

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
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

// ReadSafetensorsHeader reads only the header of a safetensors file: an 8-byte little-endian
// length followed by that many bytes of JSON. It works on files truncated after the header.
func ReadSafetensorsHeader(path string) (map[string]TensorInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("%s: not a safetensors file: %w", path, err)
	}
	if n == 0 || n > maxHeader {
		return nil, fmt.Errorf("%s: not a safetensors file (header length %d)", path, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("%s: short safetensors header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(buf, &raw); err != nil {
		return nil, fmt.Errorf("%s: bad safetensors header: %w", path, err)
	}
	out := make(map[string]TensorInfo, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var t TensorInfo
		if err := json.Unmarshal(msg, &t); err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, name, err)
		}
		t.File = path
		out[name] = t
	}
	return out, nil
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
