package gguf

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeGGUF builds a minimal file by hand: one metadata key and one tensor of the given type.
func writeGGUF(t *testing.T, version uint32, typ TensorType, dims []uint64, data []byte) string {
	t.Helper()
	var b []byte
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	u64 := func(v uint64) { b = binary.LittleEndian.AppendUint64(b, v) }
	str := func(s string) { u64(uint64(len(s))); b = append(b, s...) }
	u32(magic)
	u32(version)
	u64(1) // tensors
	u64(1) // metadata
	str("general.architecture")
	u32(uint32(TypeString))
	str("llama")
	str("w")
	u32(uint32(len(dims)))
	for _, d := range dims {
		u64(d)
	}
	u32(uint32(typ))
	u64(0)
	for len(b)%defaultAlignment != 0 {
		b = append(b, 0)
	}
	b = append(b, data...)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenReadsVersion2And3(t *testing.T) {
	for _, v := range []uint32{2, 3} {
		data := binary.LittleEndian.AppendUint32(nil, 0x3f800000) // 1.0
		data = binary.LittleEndian.AppendUint32(data, 0xc0000000) // -2.0
		g, err := Open(writeGGUF(t, v, F32, []uint64{2}, data))
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		arch, err := g.Metadata.String("general.architecture")
		if err != nil || arch != "llama" {
			t.Fatalf("architecture %q, %v", arch, err)
		}
		vals, err := g.ReadFloat32(g.Tensors[0])
		if err != nil || !slices.Equal(vals, []float32{1, -2}) {
			t.Fatalf("values %v, %v", vals, err)
		}
		g.Close()
	}
}

func TestOpenErrorsNameFileAndPlace(t *testing.T) {
	good := writeGGUF(t, 3, F32, []uint64{2}, make([]byte, 8))
	raw, _ := os.ReadFile(good)
	cases := []struct {
		name string
		data []byte
		want []string
	}{
		{"magic", append([]byte("GGML"), raw[4:]...), []string{"offset 0", "not a GGUF file"}},
		{"version", append(append(slices.Clone(raw[:4]), 9, 0, 0, 0), raw[8:]...), []string{"offset 4", "version 9"}},
		{"truncated header", raw[:30], []string{"offset", "cannot fit in the file"}},
		{"truncated value", raw[:50], []string{"offset 24", "runs past the end"}},
		{"truncated data", raw[:len(raw)-4], []string{`tensor "w"`, "past the end"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.gguf")
			os.WriteFile(path, c.data, 0o644)
			_, err := Open(path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(c.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestUnsupportedTypeIsNamed(t *testing.T) {
	g, err := Open(writeGGUF(t, 3, Q8_K, []uint64{256}, make([]byte, Q8_K.TypeSize())))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	_, err = g.ReadFloat32(g.Tensors[0])
	var te *TensorError
	if !errors.As(err, &te) || te.Tensor != "w" || !strings.Contains(err.Error(), "Q8_K") {
		t.Fatalf("error %v, want a TensorError naming w and Q8_K", err)
	}
}

func TestMetadataTypeErrorsNameKey(t *testing.T) {
	g, err := Open(writeGGUF(t, 3, F32, []uint64{1}, make([]byte, 4)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Metadata.Uint("general.architecture"); err == nil || !strings.Contains(err.Error(), `"general.architecture"`) {
		t.Fatalf("error %v", err)
	}
	if _, err := g.Metadata.String("llama.block_count"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error %v", err)
	}
}
