// Package optim holds the optimizers yai trains with — AdamW (the default), Adam and SGD with
// momentum — plus global-norm gradient clipping and learning-rate schedules. Updates are
// written with the same MLX ops, in the same order and dtypes, as mlx.optimizers, so a step
// here equals a step there.
//
// An optimizer is stateless Go code over explicit state arrays: Init makes the state for a
// list of parameters, Apply maps (params, grads, state, lr, step) to new params and new
// state. That shape lets the training step compile the update with everything as inputs and
// outputs, and lets callers evaluate the state every step and save or load it.
package optim

import (
	"fmt"

	"github.com/yai-dev/yai/mlx"
)

// Config chooses and tunes an optimizer. Start from DefaultConfig: the zero values of the
// Adam fields are not mlx's defaults.
type Config struct {
	Name         string    `json:"name" yaml:"name"` // "adamw", "adam" or "sgd"
	LearningRate float64   `json:"learning_rate" yaml:"learning_rate"`
	Schedule     *Schedule `json:"lr_schedule,omitempty" yaml:"lr_schedule,omitempty"` // replaces LearningRate when set

	// Adam and AdamW.
	Betas          [2]float64 `json:"betas" yaml:"betas"`
	Eps            float64    `json:"eps" yaml:"eps"`
	BiasCorrection bool       `json:"bias_correction" yaml:"bias_correction"`

	// AdamW (decoupled) and SGD (L2 added to the gradient).
	WeightDecay float64 `json:"weight_decay" yaml:"weight_decay"`

	// SGD.
	Momentum  float64 `json:"momentum" yaml:"momentum"`
	Dampening float64 `json:"dampening" yaml:"dampening"`
	Nesterov  bool    `json:"nesterov" yaml:"nesterov"`

	// MaxGradNorm clips the global gradient norm before the update (mlx.optimizers
	// clip_grad_norm); 0 disables clipping.
	MaxGradNorm float64 `json:"max_grad_norm" yaml:"max_grad_norm"`
}

// DefaultConfig is AdamW with mlx.optimizers' defaults and mlx-lm's learning rate.
func DefaultConfig() Config {
	return Config{
		Name:         "adamw",
		LearningRate: 1e-5,
		Betas:        [2]float64{0.9, 0.999},
		Eps:          1e-8,
		WeightDecay:  0.01,
	}
}

// Validate reports the errors mlx.optimizers would raise, and unknown names.
func (c Config) Validate() error {
	switch c.Name {
	case "adamw", "adam":
		for i, b := range c.Betas {
			if b < 0 || b >= 1 {
				return fmt.Errorf("%s beta%d should be in [0, 1), got %v", c.Name, i+1, b)
			}
		}
		if c.Eps < 0 {
			return fmt.Errorf("%s epsilon should be >= 0, got %v", c.Name, c.Eps)
		}
	case "sgd":
		if c.Nesterov && (c.Momentum <= 0 || c.Dampening != 0) {
			return fmt.Errorf("sgd: nesterov momentum requires a momentum and zero dampening")
		}
	default:
		return fmt.Errorf("unknown optimizer %q (want adamw, adam or sgd)", c.Name)
	}
	if c.MaxGradNorm < 0 {
		return fmt.Errorf("max_grad_norm should be >= 0, got %v", c.MaxGradNorm)
	}
	if c.Schedule != nil {
		return c.Schedule.Validate()
	}
	return nil
}

// LearningRateAt is the rate of the update that follows `step` earlier updates (mlx
// evaluates the schedule before it increments its step counter).
func (c Config) LearningRateAt(step int) float32 {
	if c.Schedule != nil {
		return c.Schedule.At(step)
	}
	return float32(c.LearningRate)
}

// Optimizer applies one kind of update. It holds no arrays.
type Optimizer struct {
	cfg Config
}

// New checks cfg and returns its optimizer.
func New(cfg Config) (*Optimizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Optimizer{cfg: cfg}, nil
}

// Config is the optimizer's configuration.
func (o *Optimizer) Config() Config { return o.cfg }

// Slots names the state kept per parameter, in the order Init and Apply lay it out.
func (o *Optimizer) Slots() []string {
	if o.cfg.Name == "sgd" {
		return []string{"v"}
	}
	return []string{"m", "v"}
}

// Init makes the zero state for params: len(Slots()) arrays per parameter, parameter-major.
func (o *Optimizer) Init(params []*mlx.Array) []*mlx.Array {
	slots := len(o.Slots())
	state := make([]*mlx.Array, 0, slots*len(params))
	for _, p := range params {
		for range slots {
			state = append(state, mlx.Zeros(p.Shape(), p.Dtype()))
		}
	}
	return state
}

// Apply returns the updated parameters and state. lr is a float32 scalar; step is the count
// of updates including this one, as a float32 scalar (Adam's bias correction reads it).
func (o *Optimizer) Apply(params, grads, state []*mlx.Array, lr, step *mlx.Array) (newParams, newState []*mlx.Array) {
	slots := len(o.Slots())
	if len(grads) != len(params) || len(state) != slots*len(params) {
		panic(&mlx.Error{Op: "optim.apply", Msg: fmt.Sprintf("%d params, %d grads, %d state arrays", len(params), len(grads), len(state))})
	}
	newParams = make([]*mlx.Array, len(params))
	newState = make([]*mlx.Array, len(state))
	for i, p := range params {
		s := state[i*slots : (i+1)*slots]
		ns := newState[i*slots : (i+1)*slots]
		switch o.cfg.Name {
		case "sgd":
			newParams[i], ns[0] = o.sgd(p, grads[i], s[0], lr)
		case "adamw":
			lrg := mlx.AsType(lr, grads[i].Dtype())
			decay := mlx.Subtract(one(lrg.Dtype()), mlx.MulScalar(lrg, o.cfg.WeightDecay))
			p = mlx.Multiply(p, decay)
			newParams[i], ns[0], ns[1] = o.adam(p, grads[i], s[0], s[1], lr, step)
		default:
			newParams[i], ns[0], ns[1] = o.adam(p, grads[i], s[0], s[1], lr, step)
		}
	}
	return newParams, newState
}

func one(dt mlx.Dtype) *mlx.Array { return mlx.Scalar(1, dt) }

// adam is mlx.optimizers.Adam.apply_single.
func (o *Optimizer) adam(p, g, m, v, lr, step *mlx.Array) (*mlx.Array, *mlx.Array, *mlx.Array) {
	b1, b2 := o.cfg.Betas[0], o.cfg.Betas[1]
	lr = mlx.AsType(lr, g.Dtype())
	m = mlx.Add(mlx.MulScalar(m, b1), mlx.MulScalar(g, 1-b1))
	v = mlx.Add(mlx.MulScalar(v, b2), mlx.MulScalar(mlx.Square(g), 1-b2))
	if o.cfg.BiasCorrection {
		f32 := mlx.Float32
		c1 := mlx.AsType(mlx.Divide(lr, mlx.Subtract(one(f32), mlx.Power(mlx.Scalar(b1, f32), step))), g.Dtype())
		c2 := mlx.AsType(mlx.Rsqrt(mlx.Subtract(one(f32), mlx.Power(mlx.Scalar(b2, f32), step))), g.Dtype())
		num := mlx.Multiply(c1, m)
		den := mlx.AddScalar(mlx.Multiply(mlx.Sqrt(v), c2), o.cfg.Eps)
		return mlx.Subtract(p, mlx.Divide(num, den)), m, v
	}
	upd := mlx.Divide(mlx.Multiply(lr, m), mlx.AddScalar(mlx.Sqrt(v), o.cfg.Eps))
	return mlx.Subtract(p, upd), m, v
}

// sgd is mlx.optimizers.SGD.apply_single.
func (o *Optimizer) sgd(p, g, v, lr *mlx.Array) (*mlx.Array, *mlx.Array) {
	c := o.cfg
	if c.WeightDecay != 0 {
		g = mlx.Add(g, mlx.MulScalar(p, c.WeightDecay))
	}
	lr = mlx.AsType(lr, g.Dtype())
	if c.Momentum <= 0 {
		return mlx.Subtract(p, mlx.Multiply(lr, g)), v
	}
	v = mlx.MulScalar(v, c.Momentum)
	if c.Dampening > 0 {
		v = mlx.Add(v, mlx.MulScalar(g, 1-c.Dampening))
	} else {
		v = mlx.Add(v, g)
	}
	upd := v
	if c.Nesterov {
		upd = mlx.Add(g, mlx.MulScalar(v, c.Momentum))
	}
	return mlx.Subtract(p, mlx.Multiply(lr, upd)), v
}

// ClipGradNorm scales grads so their global L2 norm is at most maxNorm, as
// mlx.optimizers.clip_grad_norm does, and returns the norm before clipping.
func ClipGradNorm(grads []*mlx.Array, maxNorm float64) (clipped []*mlx.Array, norm *mlx.Array) {
	var sq *mlx.Array
	for _, g := range grads {
		if g.Dtype() == mlx.Float16 {
			g = mlx.AsType(g, mlx.Float32)
		}
		s := mlx.Sum(mlx.Square(g), false)
		if sq == nil {
			sq = mlx.AddScalar(s, 0) // python starts the reduction from 0.0
		} else {
			sq = mlx.Add(sq, s)
		}
	}
	norm = mlx.Sqrt(sq)
	maxArr := mlx.Scalar(maxNorm, norm.Dtype())
	normalizer := mlx.Minimum(mlx.Divide(maxArr, mlx.AddScalar(norm, 1e-6)), one(norm.Dtype()))
	clipped = make([]*mlx.Array, len(grads))
	for i, g := range grads {
		clipped[i] = mlx.AsType(mlx.Multiply(g, normalizer), g.Dtype())
	}
	return clipped, norm
}
