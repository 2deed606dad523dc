package fuse

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/evaluate"
	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/tokenizer"
)

// Re-quantizing W + scale·B·A rounds every weight to its group's grid again; an update
// smaller than half a step of that grid is rounded away, and the fused model silently
// loses what the adapters learned. The check measures that on validation data: the loss of
// the base, of the base with the adapters, and of the merged model, and how much of the
// adapters' improvement the merged model keeps.

// DefaultThreshold is the share of the adapters' improvement a merge must keep.
const DefaultThreshold = 0.8

// FuseRemedy is what yai fuse offers when a fuse loses the training.
const FuseRemedy = "fuse with --dequantize (the adapted layers stay in float), or re-quantize them with more bits (--bits 8) or a smaller group size (--group-size 32)"

// Data is the validation set a check measures on, read as the run reads it.
type Data struct {
	File         string       // a split as data.LoadFile reads it, e.g. DATA/valid.jsonl or DATA/data/validation-*.parquet
	TrainOn      data.TrainOn // the tokens the loss counts
	Format       string       // "text", "completions", "chat", "sharegpt" or "alpaca" to require one; "" detects it
	MaxSeqLength int          // longer rows are truncated; 0 means 2048
	BatchSize    int          // 0 means 4
	Batches      int          // 0 or less: all

	Columns data.Columns // the records' field names, where renamed
}

// Survival is what a check measured: mean validation losses per token of the three models.
type Survival struct {
	File                 string
	Tokens               int
	Base, Adapted, Fused float64
}

// Improvement is how much the adapters lower the loss.
func (s Survival) Improvement() float64 { return s.Base - s.Adapted }

// Kept is the share of the adapters' improvement the fused model keeps,
// (Base − Fused) / (Base − Adapted): 1 when it computes what the adapters compute, 0 when it
// is no better than the base. NaN when the adapters do not improve the loss.
func (s Survival) Kept() float64 {
	if s.Improvement() <= 0 {
		return math.NaN()
	}
	return (s.Base - s.Fused) / s.Improvement()
}

// String is the report: the three losses and the share kept.
func (s Survival) String() string {
	kept := "nothing to keep: the adapters do not lower the loss"
	if k := s.Kept(); !math.IsNaN(k) {
		kept = fmt.Sprintf("%.1f%% of the adapters' improvement kept", 100*k)
	}
	return fmt.Sprintf("validation loss on %s (%d tokens): base %.4f, with adapters %.4f, fused %.4f: %s",
		s.File, s.Tokens, s.Base, s.Adapted, s.Fused, kept)
}

// LostError is a merge that kept less than the threshold of the adapters' improvement.
type LostError struct {
	Survival
	Threshold float64
	Remedy    string
}

func (e *LostError) Error() string {
	return fmt.Sprintf("the fused model keeps only %.1f%% of the adapters' improvement (threshold %.0f%%): "+
		"re-quantizing rounded the adapters' update away (%s). Nothing was written. To keep the training, %s; --force writes it anyway",
		100*e.Kept(), 100*e.Threshold, e.Survival, e.Remedy)
}

// Verify refuses a merge that kept less than threshold of the improvement with a LostError
// naming remedy. Adapters that do not lower the loss leave nothing to lose: no error.
func (s Survival) Verify(threshold float64, remedy string) error {
	if k := s.Kept(); !math.IsNaN(k) && k < threshold {
		return &LostError{Survival: s, Threshold: threshold, Remedy: remedy}
	}
	return nil
}

// loss evaluates m on d, tokenized by tok.
func loss(m *model.Model, tok *tokenizer.Tokenizer, d Data) (evaluate.Result, error) {
	opts := data.Options{TrainOn: d.TrainOn, Format: d.Format}
	ds, err := data.LoadFile(d.File, tok, opts.WithColumns(d.Columns))
	if err != nil {
		return evaluate.Result{}, err
	}
	return evaluate.Dataset(m, ds, evaluate.Options{BatchSize: d.BatchSize, MaxSeqLength: d.MaxSeqLength, Batches: d.Batches})
}

// MeasureAdapters is the validation loss of the model in modelDir without and with the
// adapters in adapterDir (one load of the model).
func MeasureAdapters(modelDir, adapterDir string, d Data) (base, adapted evaluate.Result, err error) {
	l, err := generate.Load(modelDir, "")
	if err != nil {
		return base, adapted, err
	}
	defer l.Free()
	if base, err = loss(l.Model, l.Tokenizer, d); err != nil {
		return base, adapted, err
	}
	a, err := lora.Load(l.Model.Layers, adapterDir)
	if err != nil {
		return base, adapted, err
	}
	defer a.Detach()
	adapted, err = loss(l.Model, l.Tokenizer, d)
	return base, adapted, err
}

// MeasureModel is the validation loss of the model in dir, such as a merged model.
func MeasureModel(dir string, d Data) (evaluate.Result, error) {
	l, err := generate.Load(dir, "")
	if err != nil {
		return evaluate.Result{}, err
	}
	defer l.Free()
	return loss(l.Model, l.Tokenizer, d)
}

// Measure is the check of a merged model in mergedDir (any model directory yai loads)
// against the base in modelDir and its adapters in adapterDir.
func Measure(modelDir, adapterDir, mergedDir string, d Data) (Survival, error) {
	base, adapted, err := MeasureAdapters(modelDir, adapterDir, d)
	if err != nil {
		return Survival{}, err
	}
	fused, err := MeasureModel(mergedDir, d)
	if err != nil {
		return Survival{}, err
	}
	return Survival{File: d.File, Tokens: base.Tokens, Base: base.Loss, Adapted: adapted.Loss, Fused: fused.Loss}, nil
}

// Check is the check FuseChecked runs.
type Check struct {
	Data      Data
	Threshold float64 // 0 means DefaultThreshold
	// Force writes a fused model that fails the check (the measurement is still returned).
	Force bool
}

// FuseChecked fuses as Fuse does into a private directory beside outDir, measures the
// result on c.Data and moves it to outDir only when it keeps at least c.Threshold of the
// adapters' improvement (or c.Force). A refused fuse returns a *LostError and leaves
// nothing behind.
func FuseChecked(modelDir, adapterDir, outDir string, opts Options, c Check) (Result, Survival, error) {
	var s Survival
	if _, err := os.Lstat(outDir); err == nil {
		return Result{}, s, fmt.Errorf("%s already exists: fuse never overwrites, choose a new directory", outDir)
	}
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	work, err := os.MkdirTemp(filepath.Dir(outDir), "."+filepath.Base(outDir)+".check-")
	if err != nil {
		return Result{}, s, err
	}
	defer os.RemoveAll(work)
	fused := filepath.Join(work, "model")
	res, err := Fuse(modelDir, adapterDir, fused, opts)
	if err != nil {
		return res, s, err
	}
	if s, err = Measure(modelDir, adapterDir, fused, c.Data); err != nil {
		return res, s, err
	}
	if err := s.Verify(c.Threshold, FuseRemedy); err != nil && !c.Force {
		return res, s, err
	}
	// The checked directory is moved, never copied, under outDir's name.
	return res, s, atomicfile.NewDir(outDir, func(tmp string) error {
		if err := os.Remove(tmp); err != nil {
			return err
		}
		return os.Rename(fused, tmp)
	})
}
