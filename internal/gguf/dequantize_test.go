package gguf

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
)

// referenceFiles writes one small GGUF file per supported type with the gguf package, and
// its dequantizations, into a temporary directory.
func referenceFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(testenv.Python(t), "testdata/reference.py", "write", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference.py write: %v\n%s", err, out)
	}
	return dir
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// TestDequantizeMatchesGGUFPackage compares every tensor of a file per supported type, bit
// for bit, with the gguf package's dequantization.
func TestDequantizeMatchesGGUFPackage(t *testing.T) {
	dir := referenceFiles(t)
	for _, typ := range supportedTypes() {
		t.Run(typ.String(), func(t *testing.T) {
			g, err := Open(filepath.Join(dir, typ.String()+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if len(g.Tensors) != 2 {
				t.Fatalf("%d tensors, want 2", len(g.Tensors))
			}
			for _, info := range g.Tensors {
				if info.Type != typ {
					t.Fatalf("%s: type %s, want %s", info.Name, info.Type, typ)
				}
				got, err := g.ReadFloat32(info)
				if err != nil {
					t.Fatal(err)
				}
				want := readF32(t, filepath.Join(dir, typ.String()+"."+info.Name+".f32"))
				if len(got) != len(want) {
					t.Fatalf("%s: %d values, want %d", info.Name, len(got), len(want))
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s[%d] = %g (%#08x), the gguf package gives %g (%#08x)", info.Name, i,
							got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
					}
				}
			}
		})
	}
}

// TestDequantizeSmolLM2MatchesGGUFPackage dequantizes every tensor of the real SmolLM2 file
// (Q4_1, Q8_0, F32) and compares a digest of its float32 bytes with the gguf package's.
func TestDequantizeSmolLM2MatchesGGUFPackage(t *testing.T) {
	path := testenv.SmolLM2GGUF(t)
	out, err := exec.Command(testenv.Python(t), "testdata/reference.py", "hash", path).Output()
	if err != nil {
		t.Fatalf("reference.py hash: %v", err)
	}
	var want map[string]struct {
		SHA256 string `json:"sha256"`
		Type   string `json:"type"`
		Shape  []int  `json:"shape"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if len(g.Tensors) != len(want) {
		t.Fatalf("%d tensors, the gguf package reads %d", len(g.Tensors), len(want))
	}
	seen := map[TensorType]bool{}
	for _, info := range g.Tensors {
		w, ok := want[info.Name]
		if !ok {
			t.Fatalf("tensor %s unknown to the gguf package", info.Name)
		}
		if info.Type.String() != w.Type || !slices.Equal(info.Shape(), w.Shape) {
			t.Fatalf("%s: %s %v, the gguf package reads %s %v", info.Name, info.Type, info.Shape(), w.Type, w.Shape)
		}
		vals, err := g.ReadFloat32(info)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		sum := sha256.Sum256(buf)
		if got := hex.EncodeToString(sum[:]); got != w.SHA256 {
			t.Fatalf("%s (%s): dequantization differs from the gguf package's", info.Name, info.Type)
		}
		seen[info.Type] = true
	}
	for _, typ := range []TensorType{Q4_1, Q8_0, F32} {
		if !seen[typ] {
			t.Errorf("no %s tensor checked", typ)
		}
	}
}

func TestHalfToFloatEveryValue(t *testing.T) {
	// Every binary16 value round-trips through float32 → float16 conversion by the
	// standard's definition: check against the value computed from its fields.
	for h := 0; h < 1<<16; h++ {
		f := HalfToFloat(uint16(h))
		exp, mant := (h>>10)&0x1f, h&0x3ff
		var want float64
		switch {
		case exp == 0x1f && mant == 0:
			want = math.Inf(1)
		case exp == 0x1f:
			if !math.IsNaN(float64(f)) {
				t.Fatalf("%#04x: %g, want NaN", h, f)
			}
			continue
		case exp == 0:
			want = float64(mant) * math.Pow(2, -24)
		default:
			want = (1 + float64(mant)/1024) * math.Pow(2, float64(exp-15))
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if float64(f) != want || math.Signbit(float64(f)) != (h&0x8000 != 0) {
			t.Fatalf("%#04x: %g, want %g", h, f, want)
		}
	}
}
