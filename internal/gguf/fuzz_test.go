package gguf

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// header builds a GGUF header with one metadata key and no tensor; value writes the key's
// type and value.
func header(value func(b []byte) []byte) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, magic)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = binary.LittleEndian.AppendUint64(b, 0) // tensors
	b = binary.LittleEndian.AppendUint64(b, 1) // metadata
	b = binary.LittleEndian.AppendUint64(b, 1)
	b = append(b, 'k')
	return value(b)
}

// nested is an array of arrays depth levels deep, the innermost holding one uint8.
func nested(depth int) []byte {
	return header(func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint32(b, uint32(TypeArray))
		for range depth - 1 {
			b = binary.LittleEndian.AppendUint32(b, uint32(TypeArray))
			b = binary.LittleEndian.AppendUint64(b, 1)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(TypeUint8))
		b = binary.LittleEndian.AppendUint64(b, 1)
		return append(b, 7)
	})
}

// Arrays nested deeper than the reader's bound are refused at their offset, however deep
// (a million levels here: the reader once recursed per level until the stack overflowed).
func TestDeeplyNestedMetadataIsRefused(t *testing.T) {
	for _, depth := range []int{maxArrayDepth + 1, 1_000_000} {
		path := filepath.Join(t.TempDir(), "deep.gguf")
		if err := os.WriteFile(path, nested(depth), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `metadata key "k": arrays nested more than`) {
			t.Errorf("depth %d: %v", depth, err)
		}
	}
	path := filepath.Join(t.TempDir(), "ok.gguf")
	os.WriteFile(path, nested(maxArrayDepth), 0o644)
	g, err := Open(path)
	if err != nil {
		t.Fatalf("depth %d: %v", maxArrayDepth, err)
	}
	g.Close()
}

// FuzzParseHeader: any bytes give a File or an error, never a panic, a hang or an
// allocation out of proportion to the input.
func FuzzParseHeader(f *testing.F) {
	f.Add(nested(3))
	f.Add(header(func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint32(b, uint32(TypeString))
		b = binary.LittleEndian.AppendUint64(b, 5)
		return append(b, "llama"...)
	}))
	var tensor []byte
	tensor = binary.LittleEndian.AppendUint32(tensor, magic)
	tensor = binary.LittleEndian.AppendUint32(tensor, 3)
	tensor = binary.LittleEndian.AppendUint64(tensor, 1)
	tensor = binary.LittleEndian.AppendUint64(tensor, 0)
	tensor = binary.LittleEndian.AppendUint64(tensor, 1)
	tensor = append(tensor, 'w')
	tensor = binary.LittleEndian.AppendUint32(tensor, 1)
	tensor = binary.LittleEndian.AppendUint64(tensor, 2)
	tensor = binary.LittleEndian.AppendUint32(tensor, uint32(F32))
	tensor = binary.LittleEndian.AppendUint64(tensor, 0)
	for len(tensor)%defaultAlignment != 0 {
		tensor = append(tensor, 0)
	}
	f.Add(append(tensor, make([]byte, 8)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &File{Path: "fuzz.gguf", byName: map[string]int{}}
		if err := g.parse(bytes.NewReader(data), int64(len(data))); err != nil {
			return
		}
		for _, k := range g.Metadata.Keys() {
			g.Metadata.String(k)
			g.Metadata.Int(k, 1<<20)
			g.Metadata.Float(k)
			g.Metadata.Bool(k)
			g.Metadata.Strings(k)
			g.Metadata.Ints(k)
			g.Metadata.Floats(k)
		}
		for _, ti := range g.Tensors {
			ti.Shape()
			ti.Size()
		}
	})
}
