package gguf

import "fmt"

// TensorType is a GGML tensor type, as stored in a tensor info.
type TensorType uint32

// The GGML tensor types. Only some of them can be dequantized (see Dequantize); the rest are
// named so errors can say what a file holds.
const (
	F32     TensorType = 0
	F16     TensorType = 1
	Q4_0    TensorType = 2
	Q4_1    TensorType = 3
	Q5_0    TensorType = 6
	Q5_1    TensorType = 7
	Q8_0    TensorType = 8
	Q8_1    TensorType = 9
	Q2_K    TensorType = 10
	Q3_K    TensorType = 11
	Q4_K    TensorType = 12
	Q5_K    TensorType = 13
	Q6_K    TensorType = 14
	Q8_K    TensorType = 15
	IQ2_XXS TensorType = 16
	IQ2_XS  TensorType = 17
	IQ3_XXS TensorType = 18
	IQ1_S   TensorType = 19
	IQ4_NL  TensorType = 20
	IQ3_S   TensorType = 21
	IQ2_S   TensorType = 22
	IQ4_XS  TensorType = 23
	I8      TensorType = 24
	I16     TensorType = 25
	I32     TensorType = 26
	I64     TensorType = 27
	F64     TensorType = 28
	IQ1_M   TensorType = 29
	BF16    TensorType = 30
	TQ1_0   TensorType = 34
	TQ2_0   TensorType = 35
	MXFP4   TensorType = 39
	NVFP4   TensorType = 40
	Q1_0    TensorType = 41
)

// qk is the number of weights in a K-quant super-block.
const qk = 256

type typeInfo struct {
	name      string
	blockSize int // weights per block
	typeSize  int // bytes per block
}

// typeInfos are ggml's block layouts (GGML_QUANT_SIZES in the gguf package).
var typeInfos = map[TensorType]typeInfo{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2}, BF16: {"BF16", 1, 2}, F64: {"F64", 1, 8},
	I8: {"I8", 1, 1}, I16: {"I16", 1, 2}, I32: {"I32", 1, 4}, I64: {"I64", 1, 8},
	Q4_0: {"Q4_0", 32, 2 + 16}, Q4_1: {"Q4_1", 32, 2 + 2 + 16},
	Q5_0: {"Q5_0", 32, 2 + 4 + 16}, Q5_1: {"Q5_1", 32, 2 + 2 + 4 + 16},
	Q8_0: {"Q8_0", 32, 2 + 32}, Q8_1: {"Q8_1", 32, 4 + 4 + 32},
	Q2_K: {"Q2_K", qk, 2 + 2 + qk/16 + qk/4}, Q3_K: {"Q3_K", qk, 2 + qk/4 + qk/8 + 12},
	Q4_K: {"Q4_K", qk, 2 + 2 + 12 + qk/2}, Q5_K: {"Q5_K", qk, 2 + 2 + 12 + qk/8 + qk/2},
	Q6_K: {"Q6_K", qk, 2 + qk/16 + qk/4 + qk/2}, Q8_K: {"Q8_K", qk, 4 + qk + qk/8},
	IQ2_XXS: {"IQ2_XXS", qk, 2 + qk/4}, IQ2_XS: {"IQ2_XS", qk, 2 + qk/4 + qk/32},
	IQ3_XXS: {"IQ3_XXS", qk, 2 + qk/4 + qk/8}, IQ1_S: {"IQ1_S", qk, 2 + qk/8 + qk/16},
	IQ4_NL: {"IQ4_NL", 32, 2 + 16}, IQ3_S: {"IQ3_S", qk, 2 + qk/4 + qk/8 + qk/32 + 4},
	IQ2_S: {"IQ2_S", qk, 2 + qk/4 + qk/16}, IQ4_XS: {"IQ4_XS", qk, 2 + 2 + qk/2 + qk/64},
	IQ1_M: {"IQ1_M", qk, qk/8 + qk/16 + qk/32}, TQ1_0: {"TQ1_0", qk, 2 + 4*13},
	TQ2_0: {"TQ2_0", qk, 2 + 64}, MXFP4: {"MXFP4", 32, 1 + 16}, NVFP4: {"NVFP4", 64, 4 + 32},
	Q1_0: {"Q1_0", 128, 2 + 16},
}

func (t TensorType) String() string {
	if info, ok := typeInfos[t]; ok {
		return info.name
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// BlockSize is the number of weights one block of the type holds.
func (t TensorType) BlockSize() int { return typeInfos[t].blockSize }

// TypeSize is the number of bytes one block of the type takes.
func (t TensorType) TypeSize() int { return typeInfos[t].typeSize }

func (t TensorType) known() bool { _, ok := typeInfos[t]; return ok }
