package mlxbackend

import (
	goruntime "runtime"
	"strings"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/stages"
)

// Device is what MLX computes on, as the memory estimate needs it: the CPU, Metal (a GPU on
// macOS) or CUDA (a GPU elsewhere) with its compute capability.
func Device() stages.Device {
	info := mlx.DefaultDeviceInfo()
	switch {
	case mlx.DefaultDevice().Type != mlx.GPU:
		return stages.Device{Backend: "cpu", Name: strings.TrimSpace("CPU " + info.Name)}
	case goruntime.GOOS == "darwin":
		return stages.Device{Backend: "metal", Name: strings.TrimSpace("Metal " + info.Name)}
	}
	return stages.CUDADevice(info.Name, info.ComputeCapability[0], info.ComputeCapability[1])
}
