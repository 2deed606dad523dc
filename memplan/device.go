package memplan

import (
	"fmt"
	goruntime "runtime"
)

// Device is what a run's steps compute on, as far as its memory estimate depends on it.
type Device struct {
	Backend string // MLX's backend: "cpu", "metal" or "cuda"
	Name    string // for people, e.g. "NVIDIA H100 80GB HBM3 (compute capability 9.0)"
	// MatmulWorkspace is the scratch a matrix product allocates beside its output: cuBLAS's
	// workspace on CUDA, none on the CPU and Metal.
	MatmulWorkspace int64
}

// GPU reports whether the device is a GPU, where compute_dtype auto keeps the checkpoint's
// dtype.
func (d Device) GPU() bool { return d.Backend == "metal" || d.Backend == "cuda" }

// CUDADevice is an NVIDIA GPU of compute capability major.minor. MLX asks cuBLAS for a
// workspace of 32 MiB from compute capability 9 (Hopper) on and 4 MiB before, as NVIDIA
// recommends, and allocates it with each product.
func CUDADevice(name string, major, minor int) Device {
	ws := int64(4 << 20)
	if major >= 9 {
		ws = 32 << 20
	}
	return Device{Backend: "cuda", Name: fmt.Sprintf("%s (compute capability %d.%d)", name, major, minor), MatmulWorkspace: ws}
}

// PlatformDevice is what the MLX yai ships with computes on when no backend says: Metal on
// macOS, the CPU elsewhere.
func PlatformDevice() Device {
	if goruntime.GOOS == "darwin" {
		return Device{Backend: "metal", Name: "Metal"}
	}
	return Device{Backend: "cpu", Name: "CPU"}
}

// Resolved is d, or the platform's device when d is unset.
func (d Device) Resolved() Device {
	if d.Backend == "" {
		return PlatformDevice()
	}
	return d
}
