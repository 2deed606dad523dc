package recipe

import (
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/stages"
)

// Workload collects what the recipe's stages declare about the step's shape: each kind that
// shapes the estimate adds its settings, or its defaults when the recipe has no such stage.
func Workload(r *Recipe) memplan.Workload {
	var w memplan.Workload
	seen := map[*stages.Kind]bool{}
	for _, d := range r.Stages {
		if kind, ok := stages.Get(d.Kind); ok && d.Config != nil {
			kind.AddWorkload(d.Config, &w)
			seen[kind] = true
		}
	}
	for _, kind := range stages.Kinds() {
		if kind.ShapesWorkload() && !seen[kind] {
			kind.AddWorkload(kind.NewConfig(), &w)
		}
	}
	return w
}
