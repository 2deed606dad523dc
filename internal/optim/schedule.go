package optim

import (
	"fmt"
	"math"
)

// Schedule is a learning-rate schedule in mlx-lm's `lr_schedule` layout: the name of an
// mlx.optimizers.schedulers function, its arguments (the first is the initial rate) and an
// optional linear warmup from WarmupInit joined in front, as mlx_lm.tuner.utils.build_schedule
// does. Name "constant" (arguments [lr]) is yai's addition: a flat rate, with warmup if set.
type Schedule struct {
	Name       string    `json:"name" yaml:"name"`
	Arguments  []float64 `json:"arguments" yaml:"arguments"`
	Warmup     int       `json:"warmup,omitempty" yaml:"warmup,omitempty"`
	WarmupInit float64   `json:"warmup_init,omitempty" yaml:"warmup_init,omitempty"`
}

// Validate reports a schedule that mlx would reject or that yai does not know.
func (s Schedule) Validate() error {
	need := map[string][2]int{ // min and max argument counts
		"constant":          {1, 1},
		"cosine_decay":      {2, 3},
		"linear_schedule":   {3, 3},
		"exponential_decay": {2, 2},
		"step_decay":        {3, 3},
	}
	n, ok := need[s.Name]
	if !ok {
		return fmt.Errorf("unknown schedule %q (want constant, cosine_decay, linear_schedule, exponential_decay or step_decay)", s.Name)
	}
	if len(s.Arguments) < n[0] || len(s.Arguments) > n[1] {
		return fmt.Errorf("schedule %s takes %d to %d arguments, got %d", s.Name, n[0], n[1], len(s.Arguments))
	}
	switch s.Name {
	case "cosine_decay":
		if s.Arguments[1] < 1 {
			return fmt.Errorf("cosine_decay: decay_steps must be greater than 0, got %v", s.Arguments[1])
		}
	case "linear_schedule":
		if s.Arguments[2] < 1 {
			return fmt.Errorf("linear_schedule: steps must be greater than 0, got %v", s.Arguments[2])
		}
	case "step_decay":
		if s.Arguments[2] < 1 {
			return fmt.Errorf("step_decay: step_size must be greater than 0, got %v", s.Arguments[2])
		}
	}
	if s.Warmup < 0 {
		return fmt.Errorf("warmup must be at least 0, got %d", s.Warmup)
	}
	return nil
}

// At is the learning rate for the update that follows `step` earlier updates. It computes
// in float32 like mlx's schedulers do, so rates match mlx to the last bit or so.
func (s Schedule) At(step int) float32 {
	if s.Warmup > 0 {
		// join_schedules([linear_schedule(warmup_init, init, warmup), main], [warmup+1])
		if step < s.Warmup+1 {
			return linear(s.WarmupInit, s.Arguments[0], s.Warmup, step)
		}
		step -= s.Warmup + 1
	}
	a := s.Arguments
	switch s.Name {
	case "constant":
		return float32(a[0])
	case "cosine_decay":
		end := 0.0
		if len(a) > 2 {
			end = a[2]
		}
		steps := int(a[1])
		k := min(step, steps)
		decay := float32(0.5) * (1 + float32(math.Cos(float64(float32(math.Pi/float64(steps))*float32(k)))))
		return float32(end) + decay*float32(a[0]-end)
	case "linear_schedule":
		return linear(a[0], a[1], int(a[2]), step)
	case "exponential_decay":
		return float32(a[0]) * float32(math.Pow(float64(float32(a[1])), float64(step)))
	case "step_decay":
		return float32(a[0]) * float32(math.Pow(float64(float32(a[1])), float64(step/int(a[2]))))
	}
	panic("optim: unknown schedule " + s.Name)
}

// linear is mlx's linear_schedule(init, end, steps) at step.
func linear(init, end float64, steps, step int) float32 {
	k := min(step, steps)
	return float32(k)*float32((end-init)/float64(steps)) + float32(init)
}
