// Package layers states the project's import layers as data, and its test holds every package
// to them: imports point down only, and the MLX backend never imports the recipe compiler.
package layers

// Layer of each package, by import path below the module, lowest first. A package may import
// packages of its own layer or below; a package missing here fails the test until it is placed.
var Layer = map[string]int{
	// 0 base: bindings, file formats, tokenizer, data, the model directory, the memory plan
	"mlx": 0, "internal/atomicfile": 0, "internal/ioerr": 0, "internal/gguf": 0,
	"internal/tokenizer": 0, "internal/data": 0, "modeldir": 0,
	"memplan": 0, "internal/testenv": 0, "internal/layers": 0,
	// 1 core: the model, adapters, optimizers, the step, decoding, serving, fusing, import
	"internal/model": 1, "internal/lora": 1, "internal/optim": 1, "internal/train": 1,
	"internal/generate": 1, "internal/evaluate": 1, "internal/fuse": 1, "internal/ggufimport": 1,
	"internal/testmodel": 1, "internal/testtrain": 1, "internal/peft": 1, "internal/ggufexport": 1,
	"internal/serve": 1,
	// 2 the contract between the engine and a stage
	"stages/stage": 2,
	// 3 the kind catalog
	"stages": 3,
	// 4 the compiler, the MLX backend, the run directory format
	"recipe": 4, "schema": 4, "stages/mlxbackend": 4, "internal/rundir": 4,
	// 5 the engine, the ranks' launcher and what reads runs back
	"runtime": 5, "internal/report": 5, "internal/cluster": 5, "recipes": 0,
	// 6 programs
	"cmd/yai": 6, "cmd/yai-tinymodel": 6,
}

// Forbidden are imports within a layer that would tie apart jobs together: the backend reads
// the plan the compiler made, it never imports the compiler.
var Forbidden = map[string][]string{
	"stages/mlxbackend": {"recipe", "schema", "runtime"},
	"recipe":            {"stages/mlxbackend"},
	"internal/rundir":   {"recipe", "stages/mlxbackend", "runtime"},
}
