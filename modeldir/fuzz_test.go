package modeldir

import (
	"testing"
)

// FuzzParseSafetensorsHeader feeds arbitrary header JSON to the parser and the per-file
// checks: every header is tensors or an error, and checking them against any file size
// never panics or overflows.
func FuzzParseSafetensorsHeader(f *testing.F) {
	for _, s := range []string{
		`{"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}`,
		`{"__metadata__": {"format": "mlx"}, "w": {"dtype": "U32", "shape": [64, 8], "data_offsets": [0, 2048]}}`,
		`{"a": {"dtype": "F32", "shape": [9223372036854775807, 4], "data_offsets": [0, 8]}}`,
		`{"a": {"dtype": "Q4", "shape": [], "data_offsets": [8, 0]}}`, `{"a": 1}`, `[]`, `{`,
	} {
		f.Add([]byte(s), int64(64))
	}
	f.Fuzz(func(t *testing.T, header []byte, size int64) {
		ts, err := ParseSafetensorsHeader(header)
		if err != nil {
			return
		}
		s := &Shard{Path: "f.safetensors", HeaderLen: int64(len(header)), Size: 8 + int64(len(header)) + size, Tensors: ts}
		for _, p := range CheckShard(s) {
			if p.File == "" || p.Message == "" {
				t.Fatalf("problem without a file or message: %+v", p)
			}
		}
	})
}
