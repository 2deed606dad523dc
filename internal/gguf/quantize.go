package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Quantize packs row-major float32 weights as t, block by block, with the float32
// operations of the gguf Python package's quantize (gguf/quants.py) in its order, so the
// bytes match it exactly. Explicit float32 conversions keep the compiler from fusing a
// multiply and an add into one rounding.
func Quantize(t TensorType, w []float32) ([]byte, error) {
	q, ok := quantizers[t]
	if !ok {
		return nil, fmt.Errorf("cannot quantize to tensor type %s (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1)", t)
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	if len(w)%bs != 0 {
		return nil, fmt.Errorf("%d weights are not a whole number of %s blocks of %d", len(w), t, bs)
	}
	out := make([]byte, len(w)/bs*ts)
	for b := 0; b < len(w)/bs; b++ {
		q(out[b*ts:(b+1)*ts], w[b*bs:(b+1)*bs])
	}
	return out, nil
}

// CanQuantize reports whether Quantize handles t.
func CanQuantize(t TensorType) bool { _, ok := quantizers[t]; return ok }

var quantizers = map[TensorType]func(dst []byte, x []float32){
	F32: func(dst []byte, x []float32) { binary.LittleEndian.PutUint32(dst, math.Float32bits(x[0])) },
	F16: func(dst []byte, x []float32) { binary.LittleEndian.PutUint16(dst, FloatToHalf(x[0])) },
	BF16: func(dst []byte, x []float32) {
		binary.LittleEndian.PutUint16(dst, floatToBF16(x[0]))
	},
	Q8_0: quantQ8_0,
	Q4_0: quantQ4_0,
	Q4_1: quantQ4_1,
	Q5_0: quantQ5_0,
	Q5_1: quantQ5_1,
}

// FloatToHalf rounds a float32 to the nearest IEEE half (ties to even), as numpy's
// astype(float16) does, subnormals, infinities and NaN included.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff { // inf or nan
		if man == 0 {
			return sign | 0x7c00
		}
		h := uint16(man >> 13)
		if h == 0 {
			h = 1
		}
		return sign | 0x7c00 | h | 0x200
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // rounds to zero
		}
		man |= 0x800000
		shift := uint32(14 - e)
		h := man >> shift
		rem := man & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to infinity: correct rounding
	}
	return sign | uint16(h)
}

// floatToBF16 is ggml_compute_fp32_to_bf16: NaN made quiet, else rounded to nearest even.
func floatToBF16(f float32) uint16 {
	n := math.Float32bits(f)
	if n&0x7fffffff > 0x7f800000 {
		return uint16((n&0xffff0000 | 64<<16) >> 16)
	}
	return uint16((uint64(n) + uint64(0x7fff+((n>>16)&1))) >> 16)
}

// roundAway is np_roundf: rounds half away from zero with float32 steps.
func roundAway(n float32) float32 {
	a := float32(math.Abs(float64(n)))
	floored := float32(math.Floor(float64(a)))
	b := floored + float32(math.Floor(float64(float32(2*float32(a-floored)))))
	switch {
	case n > 0:
		return b
	case n < 0:
		return -b
	}
	return 0
}

// inverse is np.where(d == 0, 0, 1 / d).
func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// absMax is the block's value of largest magnitude, the first one on ties (numpy's argmax).
func absMax(x []float32) float32 {
	best, m := x[0], float32(math.Abs(float64(x[0])))
	for _, v := range x[1:] {
		if a := float32(math.Abs(float64(v))); a > m {
			best, m = v, a
		}
	}
	return best
}

// truncByte is np.trunc(v).astype(np.uint8).clip(0, hi) for the values quantizers make.
func truncByte(v float32, hi int) uint8 {
	t := int(math.Trunc(float64(v)))
	return uint8(max(0, min(hi, t)))
}

func putHalf(dst []byte, f float32) { binary.LittleEndian.PutUint16(dst, FloatToHalf(f)) }

func quantQ8_0(dst []byte, x []float32) {
	var m float32
	for _, v := range x {
		m = max(m, float32(math.Abs(float64(v))))
	}
	d := m / 127
	id := inverse(d)
	putHalf(dst, d)
	for i, v := range x {
		dst[2+i] = uint8(int8(roundAway(float32(v * id))))
	}
}

func quantQ4_0(dst []byte, x []float32) {
	d := absMax(x) / -8
	id := inverse(d)
	putHalf(dst, d)
	for i := range 16 {
		lo := truncByte(float32(x[i]*id)+8.5, 15)
		hi := truncByte(float32(x[16+i]*id)+8.5, 15)
		dst[2+i] = lo | hi<<4
	}
}

func minMax(x []float32) (lo, hi float32) {
	lo, hi = x[0], x[0]
	for _, v := range x[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

func quantQ4_1(dst []byte, x []float32) {
	lo, hi := minMax(x)
	d := float32(hi-lo) / 15
	id := inverse(d)
	putHalf(dst, d)
	putHalf(dst[2:], lo)
	for i := range 16 {
		a := truncByte(float32(float32(x[i]-lo)*id)+0.5, 15)
		b := truncByte(float32(float32(x[16+i]-lo)*id)+0.5, 15)
		dst[4+i] = a | b<<4
	}
}

// q5Pack stores 32 five-bit values: high bits little-endian in qh, low nibbles paired.
func q5Pack(qh, qs []byte, q *[32]uint8) {
	var h uint32
	for i, v := range q {
		h |= uint32(v>>4) << i
	}
	binary.LittleEndian.PutUint32(qh, h)
	for i := range 16 {
		qs[i] = q[i]&0x0f | q[16+i]<<4
	}
}

func quantQ5_0(dst []byte, x []float32) {
	d := absMax(x) / -16
	id := inverse(d)
	putHalf(dst, d)
	var q [32]uint8
	for i, v := range x {
		q[i] = truncByte(float32(v*id)+16.5, 31)
	}
	q5Pack(dst[2:6], dst[6:], &q)
}

func quantQ5_1(dst []byte, x []float32) {
	lo, hi := minMax(x)
	d := float32(hi-lo) / 31
	id := inverse(d)
	putHalf(dst, d)
	putHalf(dst[2:], lo)
	var q [32]uint8
	for i, v := range x {
		q[i] = truncByte(float32(float32(v-lo)*id)+0.5, 31)
	}
	q5Pack(dst[4:8], dst[8:], &q)
}
