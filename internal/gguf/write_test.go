package gguf

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// What Write writes, Open reads back: metadata of every kind, tensors of several types.
func TestWriteReadsBack(t *testing.T) {
	w := quantizeInput()[:2*256]
	kvs := []KV{
		{"general.architecture", "llama"}, {"a.u32", uint32(7)}, {"a.i32", int32(-3)}, {"a.f32", float32(0.5)},
		{"a.bool", true}, {"a.u64", uint64(1 << 40)}, {"a.f64", 2.5}, {"a.strs", []string{"x", "", "yz"}},
		{"a.i32s", []int32{1, -2, 3}}, {"a.f32s", []float32{1.5, -2}},
	}
	var tensors []NewTensor
	var blobs [][]byte
	for _, typ := range []TensorType{F32, F16, Q8_0, Q4_0} {
		b, err := Quantize(typ, w)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, NewTensor{Name: "t." + typ.String(), Dims: []uint64{256, 2}, Type: typ})
		blobs = append(blobs, b)
	}
	path := filepath.Join(t.TempDir(), "x.gguf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(f, kvs, tensors, func(i int) ([]byte, error) { return blobs[i], nil }); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !reflect.DeepEqual(g.Metadata.Keys(), func() (ks []string) {
		for _, kv := range kvs {
			ks = append(ks, kv.Key)
		}
		return
	}()) {
		t.Fatalf("keys %v", g.Metadata.Keys())
	}
	for _, kv := range kvs {
		v, _ := g.Metadata.Get(kv.Key)
		if !reflect.DeepEqual(v.V, kv.Value) {
			t.Errorf("%s = %#v, want %#v", kv.Key, v.V, kv.Value)
		}
	}
	for i, nt := range tensors {
		info, ok := g.Tensor(nt.Name)
		if !ok || info.Type != nt.Type || !reflect.DeepEqual(info.Dims, nt.Dims) {
			t.Fatalf("%s: read %+v", nt.Name, info)
		}
		raw, err := g.ReadRaw(info)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(raw, blobs[i]) {
			t.Errorf("%s: data differs", nt.Name)
		}
	}
}
