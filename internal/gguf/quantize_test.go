package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
)

// quantizeInput is float32 weights that reach every branch of the quantizers: a normal
// spread, blocks of zeros, ties of magnitude, tiny and huge values, halves that round.
func quantizeInput() []float32 {
	r := rand.New(rand.NewPCG(7, 11))
	w := make([]float32, 64*256)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.05)
	}
	for i := 0; i < 32; i++ { // a zero block
		w[256+i] = 0
	}
	for i := 512; i < 544; i++ { // ties between +max and -max
		w[i] = float32(i%2*2-1) * 0.5
	}
	for i := 768; i < 800; i++ { // subnormal halves as scales
		w[i] = float32(r.NormFloat64()) * 1e-7
	}
	for i := 1024; i < 1056; i++ { // beyond the half range
		w[i] = float32(r.NormFloat64()) * 1e6
	}
	for i := 1280; i < 1312; i++ { // exact multiples: x·id lands on halves
		w[i] = float32(i-1296) / 2
	}
	return w
}

// Every quantizer gives the bytes of the gguf package's quantize on the same weights.
func TestQuantizeMatchesGGUFPackage(t *testing.T) {
	w := quantizeInput()
	dir := t.TempDir()
	in := filepath.Join(dir, "w.f32")
	raw := make([]byte, 4*len(w))
	for i, v := range w {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []TensorType{F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1} {
		t.Run(typ.String(), func(t *testing.T) {
			out := filepath.Join(dir, typ.String())
			cmd := exec.Command(testenv.Python(t), "testdata/quantize_reference.py", in, typ.String(), out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("quantize_reference.py: %v\n%s", err, msg)
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Quantize(typ, w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				for i := range got {
					if got[i] != want[i] {
						b := i / typ.TypeSize()
						t.Fatalf("%d bytes; first difference at byte %d (block %d, weights %v): %#02x, the gguf package gives %#02x",
							len(got), i, b, w[b*typ.BlockSize():(b+1)*typ.BlockSize()], got[i], want[i])
					}
				}
				t.Fatalf("%d bytes, the gguf package gives %d", len(got), len(want))
			}
			// And the dequantizer reads back what the quantizer wrote.
			if _, err := Dequantize(typ, got, len(w)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// FloatToHalf inverts HalfToFloat on every half that is not a NaN.
func TestFloatToHalfRoundTrips(t *testing.T) {
	for h := range 1 << 16 {
		f := HalfToFloat(uint16(h))
		if f != f {
			continue
		}
		if got := FloatToHalf(f); got != uint16(h) {
			t.Fatalf("FloatToHalf(%g) = %#04x, want %#04x", f, got, h)
		}
	}
}
