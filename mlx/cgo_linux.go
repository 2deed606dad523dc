//go:build linux && !mlx_external

package mlx

// libmlx of the CUDA wheels needs NVIDIA's libraries, which it finds at run time through its
// own rpath (beside it in .mlx/); the linker need not resolve them when it links yai.

/*
#cgo LDFLAGS: -Wl,--allow-shlib-undefined
*/
import "C"
