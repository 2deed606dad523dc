package mlx

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Group is a group of MLX processes that communicate through MLX's distributed backend
// (ring over TCP and MPI on CPU builds, NCCL on CUDA builds). Collectives over it are ops
// like any other: lazy, and run (or fail, naming the backend's reason) when evaluated.
type Group struct {
	h          C.yai_group
	rank, size int
}

// DistributedAvailable reports whether this libmlx carries backend ("ring", "mpi", "nccl",
// "jaccl", or "any").
func DistributedAvailable(backend string) bool {
	cs := C.CString(backend)
	defer C.free(unsafe.Pointer(cs))
	return C.yai_dist_is_available(cs) == 1
}

// InitDistributed joins the group MLX's backend discovers (the ring backend reads MLX_RANK
// and MLX_HOSTFILE, as mlx.launch sets them). With strict, a backend that cannot start is an
// error; without, the result is a group of one whose collectives are identities.
func InitDistributed(backend string, strict bool) (*Group, error) {
	cs := C.CString(backend)
	defer C.free(unsafe.Pointer(cs))
	var h C.yai_group
	st := 0
	if strict {
		st = 1
	}
	err := Do(func() error {
		call("distributed.init("+backend+")", nil, func() C.int { return C.yai_dist_init(C.int(st), cs, &h) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Group{h: h, rank: int(C.yai_group_rank(h)), size: int(C.yai_group_size(h))}, nil
}

// Rank is this process's place in the group, from 0; Size the number of processes.
func (g *Group) Rank() int { return g.rank }
func (g *Group) Size() int { return g.size }

func (g *Group) String() string { return fmt.Sprintf("rank %d of %d", g.rank, g.size) }

// Free releases the handle; the backend's connections stay open for the process's life, as
// MLX keeps them.
func (g *Group) Free() {
	if g != nil && g.h != nil {
		C.yai_group_free(g.h)
		g.h = nil
	}
}

func (g *Group) ptr() C.yai_group {
	if g == nil {
		return nil
	}
	return g.h
}

// Collective op codes shared with shim_distributed.cpp.
const (
	collAllSum = iota
	collAllGather
	collAllMax
	collAllMin
)

var collNames = map[int]string{collAllSum: "all_sum", collAllGather: "all_gather", collAllMax: "all_max", collAllMin: "all_min"}

func collective(op int, x *Array, g *Group) *Array {
	return newArray(collNames[op], []*Array{x}, func(out *C.yai_array) C.int {
		return C.yai_dist_collective(C.int(op), x.ptr(), g.ptr(), out)
	})
}

// AllSum is the elementwise sum of x over every process of g (nil: MLX's global group).
func AllSum(x *Array, g *Group) *Array { return collective(collAllSum, x, g) }

// AllGather concatenates every process's x along the first axis, in rank order.
func AllGather(x *Array, g *Group) *Array { return collective(collAllGather, x, g) }

// AllMax and AllMin are the elementwise maximum and minimum over every process of g.
func AllMax(x *Array, g *Group) *Array { return collective(collAllMax, x, g) }
func AllMin(x *Array, g *Group) *Array { return collective(collAllMin, x, g) }

// Send sends x to rank dst; the result is a token to evaluate. The ring backend sends only
// to its neighbours.
func Send(x *Array, dst int, g *Group) *Array {
	return newArray("send", []*Array{x}, func(out *C.yai_array) C.int {
		return C.yai_dist_send(x.ptr(), C.int(dst), g.ptr(), out)
	})
}

// RecvLike receives from rank src an array shaped and typed like like.
func RecvLike(like *Array, src int, g *Group) *Array {
	return newArray("recv", []*Array{like}, func(out *C.yai_array) C.int {
		return C.yai_dist_recv_like(like.ptr(), C.int(src), g.ptr(), out)
	})
}
