package ggufimport

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
)

// tensorEntry is one tensor of a safetensors file, planned before any data is produced.
type tensorEntry struct {
	name  string
	dtype string // safetensors dtype: F32, F16, BF16, U32
	shape []int
}

var dtypeBytes = map[string]int{"F32": 4, "F16": 2, "BF16": 2, "U32": 4}

func (e tensorEntry) nbytes() int {
	n := dtypeBytes[e.dtype]
	for _, d := range e.shape {
		n *= d
	}
	return n
}

// safetensorsWriter streams tensors into a safetensors file whose header is written first,
// from the plan: the whole file is never held in memory.
type safetensorsWriter struct {
	f       *os.File
	w       *bufio.Writer
	entries []tensorEntry
	next    int
}

func newSafetensorsWriter(path string, entries []tensorEntry, metadata map[string]string) (*safetensorsWriter, error) {
	header := map[string]any{"__metadata__": metadata}
	offset := 0
	for _, e := range entries {
		n := e.nbytes()
		header[e.name] = map[string]any{"dtype": e.dtype, "shape": e.shape, "data_offsets": []int{offset, offset + n}}
		offset += n
	}
	js, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	// The data section starts 8-byte aligned: pad the header with spaces, as safetensors does.
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	binary.Write(w, binary.LittleEndian, uint64(len(js)))
	w.Write(js)
	return &safetensorsWriter{f: f, w: w, entries: entries}, nil
}

// write appends the next planned tensor's bytes; the name and size must match the plan.
func (s *safetensorsWriter) write(name string, data []byte) error {
	if s.next >= len(s.entries) {
		return fmt.Errorf("safetensors: tensor %q beyond the plan", name)
	}
	e := s.entries[s.next]
	if e.name != name || e.nbytes() != len(data) {
		return fmt.Errorf("safetensors: got %q (%d bytes), the plan has %q (%d bytes) next", name, len(data), e.name, e.nbytes())
	}
	s.next++
	_, err := s.w.Write(data)
	return err
}

// close flushes and syncs the file; it fails if tensors of the plan are missing.
func (s *safetensorsWriter) close() error {
	err := s.w.Flush()
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && s.next != len(s.entries) {
		err = fmt.Errorf("safetensors: %d of %d tensors written", s.next, len(s.entries))
	}
	return err
}
