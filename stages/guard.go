package stages

import (
	"context"
	"fmt"

	"github.com/yai-dev/yai/stages/stage"
)

// Guard actions.
const (
	GuardWarn              = "warn"
	GuardClearCache        = "clear-cache"
	GuardReload            = "reload"
	GuardCheckpointAndStop = "checkpoint-and-stop"
	GuardAbort             = "abort"
	GuardAdapt             = "adapt"
)

// GuardConfig configures a memory guard.
type GuardConfig struct {
	Watch  []string `yaml:"watch" default:"mlx.active,rss" enum:"@memory-figures" doc:"figures compared against the threshold (the seed watches MLX memory and RSS side by side)"`
	Limit  Bytes    `yaml:"limit" doc:"threshold before the buffer; empty means memory.limit"`
	Buffer float64  `yaml:"buffer" default:"0.2" min:"0" max:"4" doc:"fraction over the limit allowed for temporary allocations (0.2 = 20%)"`
	Action string   `yaml:"action" default:"checkpoint-and-stop" enum:"warn,clear-cache,reload,adapt,checkpoint-and-stop,abort" doc:"what to do when a figure crosses the threshold"`
}

// Guard acts when a memory figure crosses limit × (1 + buffer).
var Guard = Define(Def[GuardConfig]{
	Name:    "guard",
	Summary: "act when a memory figure crosses limit × (1 + buffer)",
	Doc: "Compares each watched figure with the threshold (limit × (1 + buffer)) and, when one " +
		"crosses it, acts: warn, clear-cache, reload (runs the recipe's reload-selective stages), " +
		"adapt (runs the recipe's adapt stage now, so the next step is computed in a way that " +
		"fits; with --strict it saves and stops instead), checkpoint-and-stop (teardown saves " +
		"adapters; exit code 3) or abort (exit code 4). " +
		"An optional `when:` trigger narrows when the guard looks at all.",
	Events:     []stage.Event{stage.AfterStep, stage.BeforeStep},
	ResumeSafe: true,
	Build:      buildGuard,
	CheckRecipe: func(c *GuardConfig, r Recipe) []Problem {
		if c.Action == GuardReload && r.Count(ReloadSelective.Kind) == 0 {
			return []Problem{Errorf("with.action", "action: reload needs a reload-selective stage, and the recipe has none")}
		}
		if c.Action == GuardAdapt && r.Count(Adapt.Kind) == 0 {
			return []Problem{Errorf("with.action", "action: adapt needs an adapt stage, and the recipe has none")}
		}
		return nil
	},
})

// Crossing is a watched figure above its threshold.
type Crossing struct {
	Figure    string
	Value     int64
	Threshold int64
}

func (c Crossing) String() string {
	return fmt.Sprintf("%s %s crossed %s", c.Figure, Bytes(c.Value), Bytes(c.Threshold))
}

// Check returns the first watched figure of env above the guard's threshold, if any.
func (c *GuardConfig) Check(env stage.Figures) (Crossing, bool) {
	limit := int64(c.Limit)
	if limit == 0 {
		limit = env.Limit
	}
	if limit <= 0 {
		return Crossing{}, false
	}
	threshold := int64(float64(limit) * (1 + c.Buffer))
	for _, name := range c.Watch {
		v, _ := env.Figure(name)
		if int64(v) > threshold {
			return Crossing{Figure: name, Value: int64(v), Threshold: threshold}, true
		}
	}
	return Crossing{}, false
}

func buildGuard(c *GuardConfig) (stage.Stage, error) {
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		cross, ok := c.Check(s.Figures)
		if !ok {
			return nil
		}
		msg := fmt.Sprintf("%s at step %d", cross, s.Figures.Step)
		s.Note("guard", msg)
		switch c.Action {
		case GuardWarn:
			s.Log.Warn("memory guard: " + msg)
		case GuardClearCache:
			s.Log.Warn("memory guard: " + msg + "; clearing cache")
			s.Memory.ClearCache()
		case GuardReload:
			s.Log.Warn("memory guard: " + msg + "; reloading")
			return s.RunKind(ctx, ReloadSelective.Name)
		case GuardAdapt:
			if !s.Strict {
				s.Log.Warn("memory guard: " + msg + "; adapting the schedule")
				return s.RunKind(ctx, Adapt.Name)
			}
			s.Log.Error("memory guard: " + msg + "; --strict: saving and stopping")
			s.Stop(stage.Stop{Code: stage.ExitCheckpointStop, Reason: "memory guard: " + msg, Checkpoint: true})
		case GuardCheckpointAndStop:
			s.Log.Error("memory guard: " + msg + "; saving and stopping")
			s.Stop(stage.Stop{Code: stage.ExitCheckpointStop, Reason: "memory guard: " + msg, Checkpoint: true})
		case GuardAbort:
			s.Log.Error("memory guard: " + msg + "; aborting")
			s.Stop(stage.Stop{Code: stage.ExitAbort, Reason: "memory guard: " + msg})
		}
		return nil
	}), nil
}
