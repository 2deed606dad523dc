package report

import "github.com/yai-dev/yai/internal/rundir"

// Event kinds marked on the memory chart.
const (
	ClearCache = "clear-cache"
	Reload     = "reload"
	Guard      = "guard"
	Checkpoint = "checkpoint"
	OverLimit  = "over-limit"
)

// EventKinds in the order charts and summaries list them.
var EventKinds = []string{ClearCache, Reload, Guard, Checkpoint, OverLimit}

// Event is one memory event at a step.
type Event struct {
	Kind string
	Step int64
	// At is where the marker sits: MLX active memory at the end of the step, or for
	// over-limit the step's MLX peak, above the limit line.
	At int64
}

// Events lists the memory events of a run, by step: a clear-cache or reload-selective stage
// that fired, a guard that found a figure over its threshold (it notes "guard"), a
// save-adapter stage that fired during the loop (a checkpoint), and a step whose MLX peak
// passed the limit (read from the figures, so runs written before the engine noted
// "over_limit" show it too).
func Events(r *rundir.Run) []Event {
	var out []Event
	for _, s := range r.Steps {
		seen := map[string]bool{}
		add := func(kind string) {
			if !seen[kind] {
				seen[kind] = true
				out = append(out, Event{Kind: kind, Step: s.Step, At: s.MLXActive})
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
		if o, ok := s.OverLimit(); ok {
			out = append(out, Event{Kind: OverLimit, Step: s.Step, At: o.MLXPeak})
		}
	}
	return out
}
