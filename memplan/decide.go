package memplan

import (
	"fmt"
	"strings"

	"github.com/yai-dev/yai/modeldir"
)

// Inputs is what a decision is made from: the recipe's workload and limits, the model's
// headers and the device.
type Inputs struct {
	Model    *modeldir.Info // config.json and safetensors headers; nil when not inspected
	Workload Workload       // the whole run's, as the recipe's stages declare it
	Device   Device         // what the steps compute on (unset: the platform's device)
	// Limit is the recipe's memory limit (0: none); CacheLimit MLX's cache limit (0: MLX's
	// default).
	Limit, CacheLimit int64
	Ranks             int // processes training together, each on its share of the batch
	// Widest is the widest training batch in tokens (padded) the data makes, read from
	// WidestFrom; 0 when the data was not read.
	Widest     int
	WidestFrom string
	// MostTargets is the most targets the loss counts in one training batch, from the
	// data; 0 when the data was not read (every position is counted).
	MostTargets int
	// Strict runs the recipe as written: no schedule of the plan's when the step would not fit.
	Strict bool
}

// Decision is how a run meets its memory limit, decided once before it starts: the dry run
// prints it, the backend sets the model up and starts the step as it says, and the governor
// estimates against it.
type Decision struct {
	Device Device // what the steps compute on
	// ComputeDtype is the dtype activations take; with Convert, load-4bit converts every
	// floating tensor to it, without it the checkpoint's dtypes stay (ComputeDtype is then
	// the checkpoint's). Empty when the model was not inspected.
	ComputeDtype string
	Convert      bool
	// Products are the quantized layers that multiply through dequantized weights.
	Products Products
	// MLXLimit is the memory limit handed to MLX, CacheLimit its cache limit (0: MLX's
	// default).
	MLXLimit, CacheLimit int64
	// Schedule is how the step starts out computing when the whole batch would not fit the
	// limit (zero: as the recipe says), and ScheduleBudget its estimate (nil then).
	Schedule       Schedule
	ScheduleBudget *Budget
	// Budget is the estimate of a step of the whole batch; nil when the model was not
	// inspected.
	Budget *Budget
	// Chunks are how many rows of a long sequence attention and the feed-forward take at a
	// time (zero: whole rows), for the widest batch.
	Chunks Chunks
}

// Decide makes the run's decision. Without a model it decides the device and MLX's limits
// only.
func Decide(in Inputs) Decision {
	d := Decision{Device: in.Device.Resolved(), MLXLimit: in.Limit, CacheLimit: in.CacheLimit}
	if in.Model == nil {
		return d
	}
	w := in.Workload
	if in.Ranks > 1 { // a process holds its own share of the batch: the estimate is per rank
		w.BatchSize = max(1, w.BatchSize/in.Ranks)
	}
	widest, from := w, "max_seq_length"
	if in.Widest > 0 {
		widest.MaxSeqLength, from = min(in.Widest, w.MaxSeqLength), "the widest batch of "+in.WidestFrom
		widest.Targets = in.MostTargets
	}
	d.ComputeDtype, d.Convert = computeDtype(in.Model, w.ComputeDtype, d.Device)
	d.Products = fixedProducts(w.Matmul)
	if w.SequenceChunks != "off" {
		d.Chunks = SequenceChunks(*in.Model.Config, widest.BatchSize, seqBucket(widest.MaxSeqLength))
	}
	b := d.estimate(in.Model, widest)
	if matmulAuto(w.Matmul) && d.Device.Backend == "cuda" {
		if d.Products = autoProducts(b, in.Limit); d.Products != (Products{}) {
			b = d.estimate(in.Model, widest)
		}
	}
	b.SeqFrom = from
	d.Budget = &b
	d.MLXLimit = mlxLimit(in.Limit, b.Overshoot)
	if !in.Strict && in.Limit > 0 && b.Floor() <= in.Limit && b.Peak() > in.Limit {
		// The schedule is fitted to max_seq_length, whatever the data's widest batch.
		if s, sb, ok := d.fitSchedule(in.Model, w, in.Limit); ok {
			d.Schedule, d.ScheduleBudget = s, &sb
		}
	}
	return d
}

// computeDtype resolves load-4bit's compute_dtype setting for the model on dev: auto is
// float32 on the CPU, whose quantized matmul is ~70× slower on half-precision scales, and
// the checkpoint's dtype on a GPU. convert is false where the checkpoint's dtypes stay.
func computeDtype(info *modeldir.Info, setting string, dev Device) (dtype string, convert bool) {
	checkpoint, _ := info.ActivationDtype()
	switch setting {
	case "checkpoint":
		return checkpoint, false
	case "auto", "":
		if dev.GPU() {
			return checkpoint, false
		}
		return "float32", true
	}
	return setting, true
}

// fixedProducts are the products a matmul setting fixes whatever the limit: all of them for
// dequantized, none otherwise (auto's are chosen against the limit on CUDA alone).
func fixedProducts(matmul string) Products {
	if matmul == "dequantized" {
		return Products{Blocks: true, Head: true}
	}
	return Products{}
}

// matmulAuto reports whether a matmul setting leaves the choice to the device and the limit.
func matmulAuto(setting string) bool { return setting == "auto" || setting == "" }

// mlxLimit is the limit handed to MLX. MLX checks it between operations and only then waits
// for queued work to free memory, so an operation that starts just under it ends above it by
// what it allocates: MLX's limit sits below the recipe's by the step's largest allocation
// (at most a quarter of the limit).
func mlxLimit(limit, overshoot int64) int64 {
	return limit - min(overshoot, limit/4)
}

// Describe renders the decision's estimate against limit, one term a line, and the
// schedule the step starts with when the whole batch would not fit.
func (d Decision) Describe(limit int64) string {
	if d.Budget == nil {
		return ""
	}
	out := d.Budget.Describe(limit)
	if d.ScheduleBudget != nil {
		out += fmt.Sprintf("schedule: the whole batch would not fit, so each step computes %s: estimated peak %s (the update is the same; --strict runs as written)\n",
			DescribeSchedule(d.Schedule, d.Budget.Batch), strings.TrimSpace(gb(d.ScheduleBudget.Peak())))
	}
	return out
}
