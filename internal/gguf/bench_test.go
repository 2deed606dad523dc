package gguf

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkDequantize reports the dequantization throughput of each type on 1M weights.
func BenchmarkDequantize(b *testing.B) {
	const n = 1 << 20
	for _, typ := range supportedTypes() {
		b.Run(typ.String(), func(b *testing.B) {
			data := make([]byte, n/typ.BlockSize()*typ.TypeSize())
			r := rand.New(rand.NewPCG(1, 2))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			b.SetBytes(4 * n)
			for b.Loop() {
				if _, err := Dequantize(typ, data, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
