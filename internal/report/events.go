package report

import "github.com/yai-dev/yai/internal/rundir"

// Event kinds marked on the memory chart.
const (
	ClearCache = "clear-cache"
	Reload     = "reload"
	Guard      = "guard"
	Checkpoint = "checkpoint"
)

// EventKinds in the order charts and summaries list them.
var EventKinds = []string{ClearCache, Reload, Guard, Checkpoint}

// Event is one memory action at a step.
type Event struct {
	Kind string
	Step int64
	// Active is MLX active memory at the end of that step, where the marker sits.
	Active int64
}

// Events lists the memory actions of a run, by step: a clear-cache or reload-selective stage
// that fired, a guard that found a figure over its threshold (it notes "guard"), a
// save-adapter stage that fired during the loop (a checkpoint).
func Events(r *rundir.Run) []Event {
	var out []Event
	for _, s := range r.Steps {
		seen := map[string]bool{}
		add := func(kind string) {
			if !seen[kind] {
				seen[kind] = true
				out = append(out, Event{Kind: kind, Step: s.Step, Active: s.MLXActive})
			}
		}
		for _, id := range s.Fired {
			switch r.Recipe.Kinds[id] {
			case "clear-cache":
				add(ClearCache)
			case "reload-selective":
				add(Reload)
			case "save-adapter":
				add(Checkpoint)
			}
		}
		if _, ok := s.Notes["guard"]; ok {
			add(Guard)
		}
	}
	return out
}
