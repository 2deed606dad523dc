package mlx

/*
#include "shim.h"
*/
import "C"

// MemoryStats are MLX's allocator figures in bytes.
type MemoryStats struct {
	Active uint64 // memory held by live arrays
	Peak   uint64 // highest Active since start or the last ResetPeakMemory
	Cache  uint64 // freed buffers kept for reuse, not yet returned to the system
}

// Memory reads MLX's allocator figures.
func Memory() MemoryStats {
	var a, p, c C.size_t
	call("memory", nil, func() C.int { return C.yai_memory(&a, &p, &c) })
	return MemoryStats{Active: uint64(a), Peak: uint64(p), Cache: uint64(c)}
}

// ResetPeakMemory sets Peak to the current Active.
func ResetPeakMemory() {
	call("reset_peak_memory", nil, func() C.int { return C.yai_reset_peak_memory() })
}

// ClearCache returns the allocator's cached buffers to the system.
func ClearCache() { call("clear_cache", nil, func() C.int { return C.yai_clear_cache() }) }

// SetMemoryLimit sets MLX's memory limit and returns the previous one. On the CPU backend
// it only makes evaluation wait for memory to be freed; it does not bound allocation.
func SetMemoryLimit(bytes uint64) (previous uint64) {
	var p C.size_t
	call("set_memory_limit", nil, func() C.int { return C.yai_set_memory_limit(C.size_t(bytes), &p) })
	return uint64(p)
}

// MemoryLimit is MLX's current memory limit.
func MemoryLimit() uint64 {
	var p C.size_t
	call("get_memory_limit", nil, func() C.int { return C.yai_get_memory_limit(&p) })
	return uint64(p)
}

// SetCacheLimit bounds the allocator's cache and returns the previous bound; 0 disables the
// cache.
func SetCacheLimit(bytes uint64) (previous uint64) {
	var p C.size_t
	call("set_cache_limit", nil, func() C.int { return C.yai_set_cache_limit(C.size_t(bytes), &p) })
	return uint64(p)
}

// SetWiredLimit sets the wired (non-pageable) memory limit on Metal and returns the previous
// one; other backends have no wired memory and ignore it.
func SetWiredLimit(bytes uint64) (previous uint64) {
	var p C.size_t
	call("set_wired_limit", nil, func() C.int { return C.yai_set_wired_limit(C.size_t(bytes), &p) })
	return uint64(p)
}
