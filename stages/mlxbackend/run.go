package mlxbackend

import (
	"errors"
	"fmt"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/internal/train"
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/stages"
)

// Training is the state one recipe run's stages share: the model, the adapters' trainer, the
// data. Stages fill it in as they run; Close frees it.
type Training struct {
	info stages.RunInfo

	model *model.Model
	tok   *tokenizer.Tokenizer

	lora    *lora.Config       // set by attach-lora
	step    *stages.StepConfig // the step stage's settings, known once the stages are built
	trainer *train.Trainer

	dataCfg  *stages.DataConfig
	dataOpts data.Options // how the data stage read its files, for the other splits
	train    *data.Dataset
	valid    *data.Dataset
	batches  *data.Batches
	random   *data.NumpyRandom // shared by training and validation batches, as mlx-lm does

	lastStep stepMemory // what the last step did to MLX memory, for the governor

	// failStep, when set, fails a step computed with a schedule the way Metal and CUDA
	// report running out of memory (the CPU backend never does): tests set it through
	// environment.
	failStep func(memplan.Schedule) error
}

// stepMemory is the memory of one step as the governor models it: the step's peak above what
// was active when it began, under the schedule and batch shape it ran with.
type stepMemory struct {
	ran          bool
	activeBefore int64
	peak         int64
	schedule     memplan.Schedule
	rows, width  int
}

// Environment is the stage environment of a program that trains over MLX: the kinds that
// need no backend, plus the training kinds built here over one Training per run. It asks
// MLX once what it computes on, for the plan.
func Environment() *stages.Environment { return environment(nil) }

// environment is Environment whose runs fail steps as failStep says (nil: never).
func environment(failStep func(memplan.Schedule) error) *stages.Environment {
	env := stages.NewEnvironment()
	stages.SetBackend(env, "mlx", func(info stages.RunInfo) (*Training, func(), error) {
		t := &Training{info: info, failStep: failStep}
		return t, t.Close, nil
	})
	stages.Implement(env, stages.Load4Bit, buildLoad)
	stages.Implement(env, stages.AttachLoRA, buildAttachLoRA)
	stages.Implement(env, stages.Data, buildData)
	stages.Implement(env, stages.Step, buildStep)
	stages.Implement(env, stages.Eval, buildEval)
	stages.Implement(env, stages.SaveAdapter, buildSaveAdapter)
	stages.Implement(env, stages.ReloadSelective, buildReloadSelective)
	stages.Implement(env, stages.Adapt, buildAdapt)
	platformFigures(env)
	env.SetDevice(Device())
	env.SetDistributed(mlx.DistributedAvailable)
	return env
}

// Close frees everything the run holds: trainer state, adapters, model weights.
func (r *Training) Close() {
	if r.batches != nil {
		r.batches.Close()
	}
	if r.trainer != nil {
		r.trainer.Close()
		r.trainer = nil
	}
	if r.model != nil {
		r.model.Free()
		r.model = nil
	}
}

// Trainer returns the trainer, creating it (and attaching the adapters) the first time it is
// needed: after load-4bit and attach-lora have run.
func (r *Training) Trainer() (*train.Trainer, error) {
	if r.trainer != nil {
		return r.trainer, nil
	}
	if r.model == nil {
		return nil, errors.New("no model loaded: a load-4bit stage must run first")
	}
	if r.lora == nil {
		return nil, errors.New("no adapters: an attach-lora stage must run first")
	}
	step := r.step
	if step == nil { // eval-only recipes: the optimizer is never used
		step = stages.Step.Defaults()
	}
	optCfg, err := optimizerConfig(step, r.info.Steps)
	if err != nil {
		return nil, err
	}
	opts := train.Options{
		GradAccumulation: step.Accumulation,
		GradCheckpoint:   step.GradCheckpoint,
		Seed:             uint64(r.info.Seed),
		LossChunk:        step.LossChunk,
		PrefixCache:      int64(step.PrefixCache),
		// On a GPU the frozen blocks' dequantized copies, which MLX frees only once the
		// device has run their products, must be gone before the backward allocates.
		SeparatePrefix: r.info.Decision.Device.GPU() && r.info.Decision.Products != (memplan.Products{}),
	}
	if r.info.Ranks != nil && r.info.Ranks.World() > 1 {
		ranks, ok := r.info.Ranks.(*Ranks)
		if !ok {
			return nil, fmt.Errorf("ranks of type %T are not an MLX group", r.info.Ranks)
		}
		opts.AllReduce = train.AllSumOver(ranks.Group())
	}
	t, err := train.NewTrainer(r.model, *r.lora, optCfg, opts)
	if err != nil {
		return nil, err
	}
	if s := r.info.Decision.Schedule; s.MicroBatches > 0 && !r.info.Strict {
		t.SetSchedule(s) // the pre-flight plan's schedule that fits the limit
	}
	r.trainer = t
	return t, nil
}

// optimizerConfig turns the step stage's settings into the optimizer's, with mlx-lm's
// schedule layout: warm-up joined in front of constant, cosine or linear decay over the
// remaining steps.
func optimizerConfig(c *stages.StepConfig, steps int) (optim.Config, error) {
	cfg := optim.DefaultConfig()
	cfg.Name = c.Optimizer
	cfg.LearningRate = c.LR
	cfg.WeightDecay = c.WeightDecay
	if c.Optimizer == "adam" {
		cfg.WeightDecay = 0
	}
	cfg.MaxGradNorm = c.MaxGradNorm
	updates := max(1, steps/max(1, c.Accumulation))
	decay := float64(max(1, updates-c.Warmup))
	s := &optim.Schedule{Warmup: c.Warmup}
	switch c.Schedule {
	case "cosine":
		s.Name, s.Arguments = "cosine_decay", []float64{c.LR, decay, 0}
	case "linear":
		s.Name, s.Arguments = "linear_schedule", []float64{c.LR, 0, decay}
	default:
		s.Name, s.Arguments = "constant", []float64{c.LR}
	}
	if err := s.Validate(); err != nil {
		return cfg, fmt.Errorf("step: %w", err)
	}
	cfg.Schedule = s
	return cfg, nil
}

// toTrainBatch converts a data batch to the trainer's layout.
func toTrainBatch(b data.Batch) train.Batch {
	out := train.Batch{Tokens: b.Tokens, Rows: b.Size, Cols: b.Width,
		Offsets: make([]int, b.Size), Lengths: make([]int, b.Size), Spans: b.Spans, Key: fmt.Sprint(b.Examples)}
	for i := range b.Size {
		out.Offsets[i] = int(b.Offsets[i])
		out.Lengths[i] = int(b.Lengths[i])
	}
	if b.Segments != nil {
		out.Segments = make([][]train.Segment, b.Size)
		for i, row := range b.Segments {
			for _, s := range row {
				out.Segments[i] = append(out.Segments[i], train.Segment{Start: s.Start, Len: s.Len, Offset: s.Offset, Spans: s.Spans, Truncated: s.Truncated})
			}
		}
	}
	return out
}
