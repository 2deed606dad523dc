package mlxbackend

import (
	goruntime "runtime"
	"strings"

	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/mlx"
)

// Device is what MLX computes on, as the memory plan needs it: the CPU, Metal (a GPU on
// macOS) or CUDA (a GPU elsewhere) with its compute capability. Environment asks it once;
// a run reads it from its plan's decision.
func Device() memplan.Device {
	info := mlx.DefaultDeviceInfo()
	switch {
	case mlx.DefaultDevice().Type != mlx.GPU:
		return memplan.Device{Backend: "cpu", Name: strings.TrimSpace("CPU " + info.Name)}
	case goruntime.GOOS == "darwin":
		return memplan.Device{Backend: "metal", Name: strings.TrimSpace("Metal " + info.Name)}
	}
	return memplan.CUDADevice(info.Name, info.ComputeCapability[0], info.ComputeCapability[1])
}
