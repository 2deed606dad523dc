// Package mlxbackend runs recipes over MLX: it gives the engine MLX's memory figures and
// implements, in its Environment, the stage kinds that need the training core (load-4bit,
// attach-lora, data, step, eval, save-adapter, reload-selective). One file per stage kind.
package mlxbackend

import (
	"github.com/yai-dev/yai/mlx"
)

// MLXMemory reads MLX's allocator and applies the recipe's limits. It implements stage.Memory
// and runtime.LimitSetter.
type MLXMemory struct{}

func (MLXMemory) Active() int64 { return int64(mlx.Memory().Active) }
func (MLXMemory) Peak() int64   { return int64(mlx.Memory().Peak) }
func (MLXMemory) Cache() int64  { return int64(mlx.Memory().Cache) }
func (MLXMemory) Arrays() int64 { return mlx.LiveArrays() }
func (MLXMemory) ClearCache()   { mlx.ClearCache() }
func (MLXMemory) ResetPeak()    { mlx.ResetPeakMemory() }

// SetLimits hands the recipe's budget to MLX. What each limit does depends on the backend:
// on Metal the memory limit makes evaluation wait for memory to free and the wired limit pins
// model memory; on the CPU backend the memory limit only throttles evaluation and does not
// bound allocation, and there is no wired memory. That is why the guard stage acts on
// measured figures rather than trusting MLX's limit. The cache limit caps MLX's buffer cache
// on every backend. Zero leaves a limit as MLX set it.
func (MLXMemory) SetLimits(memory, cache, wired int64) {
	if memory > 0 {
		mlx.SetMemoryLimit(uint64(memory))
	}
	if cache > 0 {
		mlx.SetCacheLimit(uint64(cache))
	}
	if wired > 0 {
		mlx.SetWiredLimit(uint64(wired))
	}
}
