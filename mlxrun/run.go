package mlxrun

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/yai-dev/yai/data"
	"github.com/yai-dev/yai/lora"
	"github.com/yai-dev/yai/model"
	"github.com/yai-dev/yai/optim"
	"github.com/yai-dev/yai/runtime"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/tokenizer"
	"github.com/yai-dev/yai/train"
)

// Run is the training state one recipe run shares between its stages: the model, the
// adapters' trainer, the data. Stages fill it in as they run; Close frees it.
type Run struct {
	plan *runtime.Plan

	modelDir string
	model    *model.Model
	tok      *tokenizer.Tokenizer

	lora    *lora.Config       // set by attach-lora
	step    *stages.StepConfig // the step stage's settings, known when runners are built
	trainer *train.Trainer

	dataCfg *stages.DataConfig
	train   *data.Dataset
	valid   *data.Dataset
	batches *data.Batches
	random  *data.NumpyRandom // shared by training and validation batches, as mlx-lm does
}

// New prepares the shared state of a run of plan.
func New(plan *runtime.Plan) *Run {
	r := &Run{plan: plan}
	if plan.Model != nil {
		r.modelDir = plan.Model.Dir
	}
	return r
}

// Runners are the constructors of the stage kinds whose work needs the training core.
func (r *Run) Runners() stages.Runners {
	return stages.Runners{
		"load-4bit":        stages.Runner(r.newLoad),
		"attach-lora":      stages.Runner(r.newAttachLoRA),
		"data":             stages.Runner(r.newData),
		"step":             stages.Runner(r.newStep),
		"eval":             stages.Runner(r.newEval),
		"save-adapter":     stages.Runner(r.newSaveAdapter),
		"reload-selective": stages.Runner(r.newReloadSelective),
	}
}

// Close frees everything the run holds: trainer state, adapters, model weights.
func (r *Run) Close() {
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
func (r *Run) Trainer() (*train.Trainer, error) {
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
		step = defaultStep()
	}
	optCfg, err := optimizerConfig(step, r.plan.Recipe.Steps)
	if err != nil {
		return nil, err
	}
	t, err := train.NewTrainer(r.model, *r.lora, optCfg, train.Options{
		GradAccumulation: step.Accumulation,
		GradCheckpoint:   step.GradCheckpoint,
		Seed:             uint64(r.plan.Recipe.Seed),
	})
	if err != nil {
		return nil, err
	}
	r.trainer = t
	return t, nil
}

func defaultStep() *stages.StepConfig {
	kind, _ := stages.Get("step")
	return kind.NewConfig().(*stages.StepConfig)
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

// dataDir is the recipe's data directory, relative to the recipe file.
func (r *Run) dataDir() string {
	d := r.plan.Recipe.Data
	if d == "" || filepath.IsAbs(d) {
		return d
	}
	return filepath.Join(r.plan.Recipe.Dir, d)
}

// toTrainBatch converts a data batch to the trainer's layout.
func toTrainBatch(b data.Batch) train.Batch {
	out := train.Batch{Tokens: b.Tokens, Rows: b.Size, Cols: b.Width,
		Offsets: make([]int, b.Size), Lengths: make([]int, b.Size)}
	for i := range b.Size {
		out.Offsets[i] = int(b.Offsets[i])
		out.Lengths[i] = int(b.Lengths[i])
	}
	return out
}
