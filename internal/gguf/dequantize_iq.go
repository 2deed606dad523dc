package gguf

import (
	"encoding/binary"
	"math/bits"
)

//go:generate sh -c "../../.venv/bin/python testdata/iqgrids.py > iqgrids.go"

// kvaluesIQ4NL are the 16 non-linear levels of IQ4_NL and IQ4_XS.
var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// ksigns expands 7 sign bits into 8: bit 7 makes the number of negative signs even
// (llama.cpp's ksigns_iq2xs).
var ksigns = func() (t [128]uint8) {
	for i := range t {
		t[i] = uint8(i) | uint8(bits.OnesCount8(uint8(i))&1)<<7
	}
	return t
}()

// gridWeight is weight e of a grid row (one per byte), negated when bit e of signs is set.
func gridWeight(scale float32, row uint64, e int, signs uint8) float32 {
	v := scale * float32(int8(row>>uint(8*e)))
	if signs>>uint(e)&1 != 0 {
		v = -v
	}
	return v
}

// IQ4_NL: d (f16), 16 bytes of nibbles as Q4_0, each an index into kvaluesIQ4NL; d·kvalue.
func dequantIQ4NL(dst []float32, b []byte) {
	d := half(b)
	qs := b[2:]
	for i := range 16 {
		dst[i] = d * float32(kvaluesIQ4NL[qs[i]&0x0f])
		dst[i+16] = d * float32(kvaluesIQ4NL[qs[i]>>4])
	}
}

// IQ4_XS: d (f16), the high 2 bits of 8 six-bit scales (u16), their low nibbles (4 bytes),
// then per 32 weights 16 bytes of IQ4_NL nibbles; (d·(sc-32))·kvalue.
func dequantIQ4XS(dst []float32, b []byte) {
	d := half(b)
	sh := binary.LittleEndian.Uint16(b[2:])
	sl, qs := b[4:8], b[8:]
	for ib := range 8 {
		s := sl[ib/2]>>uint(4*(ib%2))&0x0f | uint8(sh>>uint(2*ib)&3)<<4
		dl := d * float32(int8(s)-32)
		q := qs[ib*16 : ib*16+16]
		for j := range 16 {
			dst[ib*32+j] = dl * float32(kvaluesIQ4NL[q[j]&0x0f])
			dst[ib*32+16+j] = dl * float32(kvaluesIQ4NL[q[j]>>4])
		}
	}
}

// IQ2_XXS: d (f16), then per 32 weights two u32: four grid indices (bytes) and four 7-bit
// sign indices plus a 4-bit scale in the top bits; (d·(0.5+sc)·0.25)·grid·sign.
func dequantIQ2XXS(dst []float32, b []byte) {
	d := half(b)
	for ib := range 8 {
		aux0 := binary.LittleEndian.Uint32(b[2+8*ib:])
		aux1 := binary.LittleEndian.Uint32(b[6+8*ib:])
		db := float32(d*(0.5+float32(aux1>>28))) * 0.25
		for j := range 4 {
			row := iq2xxsGrid[uint8(aux0>>uint(8*j))]
			signs := ksigns[aux1>>uint(7*j)&0x7f]
			for e := range 8 {
				dst[ib*32+j*8+e] = gridWeight(db, row, e, signs)
			}
		}
	}
}

// IQ2_XS: d (f16), 32 u16 (9-bit grid index, 7-bit sign index), 8 bytes of 4-bit scales
// (one per 16 weights); (d·(0.5+sc)·0.25)·grid·sign.
func dequantIQ2XS(dst []float32, b []byte) {
	d := half(b)
	scales := b[66:74]
	for k := range 32 {
		q := binary.LittleEndian.Uint16(b[2+2*k:])
		sc := scales[k/4] >> uint(4*(k/2%2)) & 0x0f
		db := float32(d*(0.5+float32(sc))) * 0.25
		row, signs := iq2xsGrid[q&511], ksigns[q>>9]
		for e := range 8 {
			dst[k*8+e] = gridWeight(db, row, e, signs)
		}
	}
}

// IQ2_S: d (f16), 32 low bytes of 10-bit grid indices, 32 bytes of sign bits (one per
// weight), 8 bytes of the indices' high 2 bits, 8 bytes of 4-bit scales.
func dequantIQ2S(dst []float32, b []byte) {
	d := half(b)
	qs, signs, qh, scales := b[2:34], b[34:66], b[66:74], b[74:82]
	for k := range 32 {
		idx := uint16(qs[k]) | uint16(qh[k/4]>>uint(2*(k%4))&3)<<8
		sc := scales[k/4] >> uint(4*(k/2%2)) & 0x0f
		db := float32(d*(0.5+float32(sc))) * 0.25
		row := iq2sGrid[idx]
		for e := range 8 {
			dst[k*8+e] = gridWeight(db, row, e, signs[k])
		}
	}
}

// IQ3_XXS: d (f16), 64 grid indices (four weights each), then per 32 weights a u32 of four
// 7-bit sign indices and a 4-bit scale; (d·(0.5+sc)·0.5)·grid·sign.
func dequantIQ3XXS(dst []float32, b []byte) {
	d := half(b)
	qs := b[2:66]
	for ib := range 8 {
		aux := binary.LittleEndian.Uint32(b[66+4*ib:])
		db := float32(d*(0.5+float32(aux>>28))) * 0.5
		for j := range 4 {
			signs := ksigns[aux>>uint(7*j)&0x7f]
			// Two 4-weight rows make one 8-weight row of signs.
			row := uint64(iq3xxsGrid[qs[8*ib+2*j]]) | uint64(iq3xxsGrid[qs[8*ib+2*j+1]])<<32
			for e := range 8 {
				dst[ib*32+j*8+e] = gridWeight(db, row, e, signs)
			}
		}
	}
}

// IQ3_S: d (f16), 64 low bytes of 9-bit grid indices, 8 bytes of their high bits, 32 bytes of
// sign bits, 4 bytes of 4-bit scales (one per 32 weights); (d·(1+2sc))·grid·sign.
func dequantIQ3S(dst []float32, b []byte) {
	d := half(b)
	qs, qh, signs, scales := b[2:66], b[66:74], b[74:106], b[106:110]
	for ib := range 8 {
		db := d * float32(1+2*(scales[ib/2]>>uint(4*(ib%2))&0x0f))
		for j := range 4 {
			k := 8*ib + 2*j
			lo := uint16(qs[k]) | uint16(qh[ib]>>uint(2*j)&1)<<8
			hi := uint16(qs[k+1]) | uint16(qh[ib]>>uint(2*j+1)&1)<<8
			row := uint64(iq3sGrid[lo]) | uint64(iq3sGrid[hi])<<32
			for e := range 8 {
				dst[ib*32+j*8+e] = gridWeight(db, row, e, signs[4*ib+j])
			}
		}
	}
}

// iq1Delta is the offset IQ1_S and IQ1_M add to their {-1, 0, 1} grid values.
const iq1Delta = float32(0.125)

// IQ1_S: d (f16), 32 low bytes of 11-bit grid indices, then per 32 weights a u16 of four
// 3-bit index highs, a 3-bit scale and a delta sign; (d·(2sc+1))·(grid ± 0.125).
func dequantIQ1S(dst []float32, b []byte) {
	d := half(b)
	qs := b[2:34]
	for ib := range 8 {
		h := binary.LittleEndian.Uint16(b[34+2*ib:])
		dl := d * float32(2*(h>>12&7)+1)
		delta := iq1Delta
		if h&0x8000 != 0 {
			delta = -iq1Delta
		}
		for j := range 4 {
			row := iq1sGrid[uint16(qs[4*ib+j])|(h>>uint(3*j)&7)<<8]
			for e := range 8 {
				dst[ib*32+j*8+e] = dl * (float32(int8(row>>uint(8*e))) + delta)
			}
		}
	}
}

// IQ1_M: 32 low bytes of 11-bit grid indices, 16 bytes of nibbles (3-bit index high, delta
// sign), four u16 each holding four 3-bit scales (one per 16 weights) and, in the top
// nibble, a quarter of d's f16 bits; (d·(2sc+1))·(grid ± 0.125).
func dequantIQ1M(dst []float32, b []byte) {
	qs, qh := b[:32], b[32:48]
	var sc [4]uint16
	for i := range sc {
		sc[i] = binary.LittleEndian.Uint16(b[48+2*i:])
	}
	d := HalfToFloat(sc[0]>>12 | sc[1]>>12<<4 | sc[2]>>12<<8 | sc[3]>>12<<12)
	for k := range 32 {
		s := sc[k/8] >> uint(3*(k/2%4)) & 7
		dl := d * float32(2*s+1)
		h := qh[k/2] >> uint(4*(k%2))
		delta := iq1Delta
		if h&8 != 0 {
			delta = -iq1Delta
		}
		row := iq1sGrid[uint16(qs[k])|uint16(h&7)<<8]
		for e := range 8 {
			dst[k*8+e] = dl * (float32(int8(row>>uint(8*e))) + delta)
		}
	}
}
