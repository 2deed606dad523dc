package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Dequantize turns n weights stored as t into float32, block by block, computing each value
// with the same float32 operations, in the same order, as the gguf Python package
// (gguf/quants.py), so results match it bit for bit. Explicit float32 conversions keep the
// compiler from fusing a multiply and an add into one rounding.
func Dequantize(t TensorType, data []byte, n int) ([]float32, error) {
	deq, ok := dequantizers[t]
	if !ok {
		return nil, fmt.Errorf("cannot dequantize tensor type %s (supported: %s)", t, SupportedTypes())
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	if n%bs != 0 || len(data) != n/bs*ts {
		return nil, fmt.Errorf("%s data of %d bytes does not hold %d weights", t, len(data), n)
	}
	out := make([]float32, n)
	// Plain floats convert in one loop: a call per weight would dominate.
	switch t {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		return out, nil
	case F16:
		for i := range out {
			out[i] = HalfToFloat(binary.LittleEndian.Uint16(data[2*i:]))
		}
		return out, nil
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(data[2*i:])) << 16)
		}
		return out, nil
	}
	for b := 0; b < n/bs; b++ {
		deq(out[b*bs:(b+1)*bs], data[b*ts:(b+1)*ts])
	}
	return out, nil
}

// SupportedTypes names the types Dequantize handles, sorted by name.
func SupportedTypes() string {
	var names []string
	for _, t := range supportedTypes() {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}

// supportedTypes lists the keys of dequantizers, sorted by name.
func supportedTypes() []TensorType {
	types := make([]TensorType, 0, len(dequantizers))
	for t := range dequantizers {
		types = append(types, t)
	}
	slices.SortFunc(types, func(a, b TensorType) int { return strings.Compare(a.String(), b.String()) })
	return types
}

// CanDequantize reports whether Dequantize handles t.
func CanDequantize(t TensorType) bool { _, ok := dequantizers[t]; return ok }

var dequantizers = map[TensorType]func(dst []float32, block []byte){
	F32:  nil, // converted in Dequantize's loop
	F16:  nil,
	BF16: nil,
	Q8_0: dequantQ8_0,
	Q4_0: dequantQ4_0,
	Q4_1: dequantQ4_1,
	Q5_0: dequantQ5_0,
	Q5_1: dequantQ5_1,
	Q2_K: dequantQ2K,
	Q3_K: dequantQ3K,
	Q4_K: dequantQ4K,
	Q5_K: dequantQ5K,
	Q6_K: dequantQ6K,

	IQ4_NL:  dequantIQ4NL,
	IQ4_XS:  dequantIQ4XS,
	IQ2_XXS: dequantIQ2XXS,
	IQ2_XS:  dequantIQ2XS,
	IQ2_S:   dequantIQ2S,
	IQ3_XXS: dequantIQ3XXS,
	IQ3_S:   dequantIQ3S,
	IQ1_S:   dequantIQ1S,
	IQ1_M:   dequantIQ1M,

	TQ1_0: dequantTQ1_0,
	TQ2_0: dequantTQ2_0,
	MXFP4: dequantMXFP4,
	NVFP4: dequantNVFP4,
}

// HalfToFloat converts IEEE binary16 bits to float32 exactly (numpy's float16 → float32).
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf, nan (payload kept)
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: normalize into a float32 exponent.
	e := uint32(113)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

func half(b []byte) float32 { return HalfToFloat(binary.LittleEndian.Uint16(b)) }

// Q8_0: d (f16), 32 int8; x·d.
func dequantQ8_0(dst []float32, b []byte) {
	d := half(b)
	for i := range 32 {
		dst[i] = float32(int8(b[2+i])) * d
	}
}

// Q4_0: d (f16), 16 bytes of nibbles (low nibbles first, then high); d·(q-8).
func dequantQ4_0(dst []float32, b []byte) {
	d := half(b)
	qs := b[2:]
	for i := range 16 {
		dst[i] = d * float32(int8(qs[i]&0x0f)-8)
		dst[i+16] = d * float32(int8(qs[i]>>4)-8)
	}
}

// Q4_1: d, m (f16), 16 bytes of nibbles; d·q + m.
func dequantQ4_1(dst []float32, b []byte) {
	d, m := half(b), half(b[2:])
	qs := b[4:]
	for i := range 16 {
		dst[i] = float32(d*float32(qs[i]&0x0f)) + m
		dst[i+16] = float32(d*float32(qs[i]>>4)) + m
	}
}

// Q5_0: d (f16), 4 bytes of fifth bits (bit i for weight i), 16 bytes of nibbles as Q4_0;
// d·(q-16).
func dequantQ5_0(dst []float32, b []byte) {
	d := half(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:]
	for i := range 16 {
		lo := qs[i]&0x0f | byte(qh>>i&1)<<4
		hi := qs[i]>>4 | byte(qh>>(i+16)&1)<<4
		dst[i] = d * float32(int8(lo)-16)
		dst[i+16] = d * float32(int8(hi)-16)
	}
}

// Q5_1: d, m (f16), 4 bytes of fifth bits, 16 bytes of nibbles; d·q + m.
func dequantQ5_1(dst []float32, b []byte) {
	d, m := half(b), half(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:]
	for i := range 16 {
		lo := qs[i]&0x0f | byte(qh>>i&1)<<4
		hi := qs[i]>>4 | byte(qh>>(i+16)&1)<<4
		dst[i] = float32(d*float32(lo)) + m
		dst[i+16] = float32(d*float32(hi)) + m
	}
}

// Q2_K: 16 bytes of 4-bit scale and min pairs, 64 bytes of 2-bit weights (two chunks of 32
// bytes, four shifts each), d, dmin (f16); (d·sc)·q - dmin·m, one pair per 16 weights.
func dequantQ2K(dst []float32, b []byte) {
	scales, qs := b[:16], b[16:80]
	d, dmin := half(b[80:]), half(b[82:])
	for j := range 16 {
		dl := d * float32(scales[j]&0x0f)
		ml := dmin * float32(scales[j]>>4)
		for l := range 16 {
			k := j*16 + l
			q := qs[k/128*32+k%32] >> uint(2*(k%128/32)) & 3
			dst[k] = float32(dl*float32(q)) - ml
		}
	}
}

// Q3_K: 32 bytes of high-bit masks, 64 bytes of 2-bit weights (as Q2_K), 12 bytes of 6-bit
// scales, d (f16); (d·(sc-32))·(q - 4 when the mask bit is clear), one scale per 16 weights.
func dequantQ3K(dst []float32, b []byte) {
	hmask, qs, sc := b[:32], b[32:96], b[96:108]
	d := half(b[108:])
	for j := range 16 {
		s := sc[j%8]>>uint(4*(j/8))&0x0f | (sc[8+j%4]>>uint(2*(j/4))&3)<<4
		dl := d * float32(int8(s)-32)
		for l := range 16 {
			k := j*16 + l
			q := int8(qs[k/128*32+k%32] >> uint(2*(k%128/32)) & 3)
			if hmask[k%32]>>uint(k/32)&1 == 0 {
				q -= 4
			}
			dst[k] = dl * float32(q)
		}
	}
}

// kScaleMin unpacks the 8 six-bit scales and mins of a Q4_K / Q5_K super-block
// (Q4_K.get_scale_min).
func kScaleMin(s []byte) (sc, mn [8]uint8) {
	for j := range 4 {
		sc[j] = s[j] & 0x3f
		mn[j] = s[4+j] & 0x3f
		sc[4+j] = (s[8+j] & 0x0f) | ((s[j] >> 2) & 0x30)
		mn[4+j] = (s[8+j] >> 4) | ((s[4+j] >> 2) & 0x30)
	}
	return sc, mn
}

// Q4_K: d, dmin (f16), 12 bytes of scales and mins, 128 bytes of nibbles in four chunks of
// 32 bytes (low nibbles: sub-block 2j, high: 2j+1); (d·sc)·q - dmin·m.
func dequantQ4K(dst []float32, b []byte) {
	d, dmin := half(b), half(b[2:])
	sc, mn := kScaleMin(b[4:16])
	qs := b[16:]
	for j := range 8 {
		ds := d * float32(sc[j])
		dm := dmin * float32(mn[j])
		chunk, shift := qs[j/2*32:j/2*32+32], uint(4*(j%2))
		for l := range 32 {
			dst[j*32+l] = float32(ds*float32((chunk[l]>>shift)&0x0f)) - dm
		}
	}
}

// Q5_K: as Q4_K plus 32 bytes of high bits: bit j of byte l is the fifth bit of weight l
// of sub-block j.
func dequantQ5K(dst []float32, b []byte) {
	d, dmin := half(b), half(b[2:])
	sc, mn := kScaleMin(b[4:16])
	qh := b[16:48]
	qs := b[48:]
	for j := range 8 {
		ds := d * float32(sc[j])
		dm := dmin * float32(mn[j])
		chunk, shift := qs[j/2*32:j/2*32+32], uint(4*(j%2))
		for l := range 32 {
			q := (chunk[l]>>shift)&0x0f | ((qh[l]>>uint(j))&1)<<4
			dst[j*32+l] = float32(ds*float32(q)) - dm
		}
	}
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8 scales, d (f16);
// (d·scale)·(q-32) with one scale per 16 weights.
func dequantQ6K(dst []float32, b []byte) {
	ql, qh, scales := b[:128], b[128:192], b[192:208]
	d := half(b[208:])
	for k := range qk {
		h, r := k/128, k%128
		lo := (ql[h*64+r%64] >> uint(4*(r/64))) & 0x0f
		hi := (qh[h*32+r%32] >> uint(2*(r/32))) & 0x03
		q := int8(lo|hi<<4) - 32
		ds := d * float32(int8(scales[k/16]))
		dst[k] = ds * float32(q)
	}
}

// pow3 are the multipliers that shift a TQ1_0 byte's base-3 digits to the top.
var pow3 = [5]uint8{1, 3, 9, 27, 81}

// TQ1_0: 48 bytes of five ternary digits each (a fixed-point fraction of 3^5: multiplying by
// 3^p moves digit p to the top), 4 bytes of four more, d (f16); d·(digit-1).
func dequantTQ1_0(dst []float32, b []byte) {
	qs, qh := b[:48], b[48:52]
	d := half(b[52:])
	digit := func(x, p uint8) float32 {
		// The uint8 product wraps, as the gguf package's does.
		return float32(int8((uint16(x*pow3[p])*3)>>8) - 1)
	}
	for p := range uint8(5) {
		for m := range 32 {
			dst[int(p)*32+m] = d * digit(qs[m], p)
		}
		for m := range 16 {
			dst[160+int(p)*16+m] = d * digit(qs[32+m], p)
		}
	}
	for p := range uint8(4) {
		for m := range 4 {
			dst[240+int(p)*4+m] = d * digit(qh[m], p)
		}
	}
}

// TQ2_0: 64 bytes of 2-bit weights (two chunks of 32 bytes, four shifts each), d (f16);
// d·(q-1).
func dequantTQ2_0(dst []float32, b []byte) {
	qs := b[:64]
	d := half(b[64:])
	for k := range qk {
		q := qs[k/128*32+k%32] >> uint(2*(k%128/32)) & 3
		dst[k] = d * float32(int8(q)-1)
	}
}

// kvaluesMXFP4 are the e2m1 values, doubled (the scale is halved to match).
var kvaluesMXFP4 = [16]int8{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// MXFP4: an E8M0 exponent e, 16 bytes of nibbles as Q4_0; 2^(e-128)·kvalue.
func dequantMXFP4(dst []float32, b []byte) {
	e := uint32(b[0])
	bits := (e - 1) << 23
	if e < 2 {
		bits = 0x00200000 << e // subnormal halves
	}
	d := math.Float32frombits(bits)
	qs := b[1:]
	for i := range 16 {
		dst[i] = d * float32(kvaluesMXFP4[qs[i]&0x0f])
		dst[i+16] = d * float32(kvaluesMXFP4[qs[i]>>4])
	}
}

// NVFP4: four unsigned E4M3 scales (one per 16 weights), then per 16 weights 8 bytes of
// nibbles (low nibbles first) indexing kvaluesMXFP4; scale/2·kvalue.
func dequantNVFP4(dst []float32, b []byte) {
	for s := range 4 {
		d := ue4m3Half(b[s])
		q := b[4+8*s : 12+8*s]
		for j := range 8 {
			dst[16*s+j] = d * float32(kvaluesMXFP4[q[j]&0x0f])
			dst[16*s+8+j] = d * float32(kvaluesMXFP4[q[j]>>4])
		}
	}
}

// ue4m3Half is half an unsigned E4M3 value (bias 7, the byte's top bit ignored), 0 for the
// bytes 0x00 and 0x7f as in the gguf package. Every such value is exact in float32.
func ue4m3Half(x byte) float32 {
	if x == 0 || x == 0x7f {
		return 0
	}
	exp, man := int(x>>3&0x0f), float64(x&7)
	if exp == 0 {
		return float32(math.Ldexp(man, -10))
	}
	return float32(math.Ldexp(1+man/8, exp-8))
}
