package main

import (
	"github.com/yai-dev/yai/mlxrun"
	"github.com/yai-dev/yai/runtime"
	"github.com/yai-dev/yai/stages"
)

// The run command executes recipes over MLX through mlxrun.
func init() {
	newMemory = func() (stages.Memory, error) { return mlxrun.Memory{}, nil }
	trainingRunners = func(plan *runtime.Plan) (stages.Runners, func(), error) {
		r := mlxrun.New(plan)
		return r.Runners(), r.Close, nil
	}
}
