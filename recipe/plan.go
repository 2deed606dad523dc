package recipe

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages/stage"

	"github.com/yai-dev/yai/stages"
	"go.yaml.in/yaml/v3"
)

// Plan is a checked recipe ready to run: stages in dependency order, grouped by event, the
// memory limit resolved, and (after a model check) what the model looks like.
type Plan struct {
	Recipe *Recipe
	Order  []*StageDecl
	Events map[stage.Event][]*StageDecl
	Limit  int64          // memory.limit in bytes (auto resolved against this machine)
	Model  *modeldir.Info // nil when the model was not inspected
	// Decision is how the run meets the limit: device, compute dtype, products, MLX's
	// limits, the starting schedule and the memory estimate (nil without the model).
	Decision memplan.Decision
	Strict   bool // run as written: no schedule of the plan's or a governor's
	// Widest is the widest training batch in tokens (padded), from tokenizing the data;
	// 0 when the data was not tokenized. WidestFrom names the file.
	Widest     int
	WidestFrom string
	// MostTargets is the most targets the loss counts in one training batch (0: not read).
	MostTargets int
	// Data is what each data file will teach, when the data was read.
	Data []DataSummary
}

// DataSummary is what one split of the data holds and what the loss will count of it.
type DataSummary struct {
	Split   string `json:"split"`
	File    string `json:"file"`
	Format  string `json:"format"`
	TrainOn string `json:"train_on"`
	Rows    int    `json:"rows"`
	Turns   int64  `json:"turns"`
	// Trained and Masked count the tokens within max_seq_length that the loss counts and
	// does not count; NothingToTrain the rows where it counts none.
	Trained        int64 `json:"trained_tokens"`
	Masked         int64 `json:"masked_tokens"`
	NothingToTrain int   `json:"rows_with_nothing_to_train"`
}

// ValidateOptions tunes a dry run.
type ValidateOptions struct {
	SkipModel bool // do not resolve or inspect the model, nor read the data (lint and graph only)
	SkipData  bool // do not read the data files
	// Dir, when set, is where the recipe's relative paths resolve instead of the file's own
	// directory (a checkpoint's copy of a recipe resolves where the original lived).
	Dir string
	// Strict keeps the recipe as written: when the estimate is over the limit it warns
	// instead of planning a schedule that fits.
	Strict bool
	// Env, when set, is the program's stage environment: a stage whose kind it cannot run
	// is an error, so nothing that validates fails to start for want of a backend.
	Env *stages.Environment
}

// Validate is the dry run behind `yai validate` and the start of `yai run`: it loads and lints
// the recipe, checks the graph and triggers, resolves the model and reads only its config.json
// and safetensors headers, and checks the LoRA settings against them. Weights are never read.
func Validate(path string, overrides []string, opts ValidateOptions) (*Plan, Diagnostics) {
	r, diags := LoadFile(path, overrides)
	if r == nil {
		return nil, diags
	}
	return check(r, diags, opts)
}

// ValidateSource is Validate over bytes already read (file names the source in diagnostics).
func ValidateSource(file string, src []byte, overrides []string, opts ValidateOptions) (*Plan, Diagnostics) {
	r, diags := Load(file, src, overrides)
	if r == nil {
		return nil, diags
	}
	return check(r, diags, opts)
}

func check(r *Recipe, diags Diagnostics, opts ValidateOptions) (*Plan, Diagnostics) {
	if opts.Dir != "" {
		r.Dir = opts.Dir
	}
	l := &linter{file: r.File, overrides: r.overrides, diags: diags}
	p := &Plan{Recipe: r, Strict: opts.Strict}
	p.Limit = int64(r.Memory.Limit.Bytes)
	if r.Memory.Limit.Auto {
		p.Limit = int64(float64(PhysicalMemory()) * r.Memory.AutoShare)
		if p.Limit == 0 {
			l.errorf(memoryNode(r, "limit"), "limit: auto cannot read this machine's memory; give a size such as 7GB")
		}
	}
	var device memplan.Device // the platform's, unless the program's environment says
	if opts.Env != nil {
		l.checkRunnable(r, opts.Env)
		l.checkDistributedBackend(r, opts.Env)
		device = opts.Env.Device()
	}
	if !l.diags.HasErrors() {
		p.Order = Order(r)
		p.Events = ByEvent(p.Order)
	}
	if !opts.SkipModel && r.Model != "" {
		l.checkModel(r, p)
	}
	if !opts.SkipModel && !opts.SkipData {
		l.checkData(r, p)
	}
	if !l.diags.HasErrors() {
		l.decide(r, p, device)
	}
	sortDiagnostics(l.diags, r.File)
	if l.diags.HasErrors() {
		return nil, l.diags
	}
	return p, l.diags
}

// checkRunnable reports each stage whose kind this program cannot build, and each trigger or
// watched figure that this program cannot read on this platform: it would read as zero.
func (l *linter) checkRunnable(r *Recipe, env *stages.Environment) {
	for _, s := range r.Stages {
		kind, ok := stages.Get(s.Kind)
		if !ok {
			continue
		}
		if !env.Runs(kind) {
			l.errorf(valueOf(s.Node, "kind"), "%s", env.Missing(kind))
		}
		if s.trigger != nil {
			for _, name := range figuresUsed(s.trigger) {
				if why, ok := env.Unmeasured(name); ok {
					l.errorf(valueOf(s.Node, "when"), "trigger reads %s, which cannot be measured here: %s", name, why)
				}
			}
		}
		if s.Config == nil {
			continue
		}
		with := valueOf(s.Node, "with")
		v := reflect.ValueOf(s.Config).Elem()
		for _, f := range kind.Fields {
			if !f.Figures {
				continue
			}
			names, _ := v.FieldByIndex(f.Index).Interface().([]string)
			for i, name := range names {
				if why, ok := env.Unmeasured(name); ok {
					l.errorf(nodeOr(locate(r.Doc.Content[0], s.Node, fmt.Sprintf("with.%s.%d", f.Name, i)), with), "%s: %s cannot be measured here: %s", f.Name, name, why)
				}
			}
		}
	}
}

// decide makes the run's memory decision and checks its estimate: a floor above the limit
// can never run; a peak above it is likely to cross the limit on the longest batches, unless
// the decision computes the step in a way that fits.
func (l *linter) decide(r *Recipe, p *Plan, device memplan.Device) {
	w := Workload(r)
	p.Decision = memplan.Decide(memplan.Inputs{Model: p.Model, Workload: w, Device: device,
		Limit: p.Limit, CacheLimit: int64(r.Memory.CacheLimit), Ranks: r.Distributed.Ranks,
		Widest: p.Widest, WidestFrom: p.WidestFrom, MostTargets: p.MostTargets, Strict: p.Strict})
	b := p.Decision.Budget
	if b == nil {
		return
	}
	if w.PrefixCache > 0 && w.Layers >= p.Model.Config.NumHiddenLayers {
		for _, s := range r.Stages {
			if s.Kind == stages.Step.Name {
				l.warnf(valueOf(s.Node, "with"), "prefix_cache: the adapters cover all %d blocks, so no block is frozen and the cache keeps only the embeddings", p.Model.Config.NumHiddenLayers)
			}
		}
	}
	at := memoryNode(r, "limit")
	switch {
	case p.Limit <= 0:
	case b.Floor() > p.Limit:
		d := l.errorf(at, "limit: %s is below the estimated floor of %s (weights and training state)", stages.Bytes(p.Limit), stages.Bytes(b.Floor()))
		d.Detail = strings.TrimRight(b.Describe(p.Limit), "\n")
	case b.Peak() > p.Limit && p.Decision.ScheduleBudget == nil:
		d := l.warnf(at, "limit: estimated peak %s is above the limit %s; lower batch_size, max_seq_length or layers, or turn on grad_checkpoint", stages.Bytes(b.Peak()), stages.Bytes(p.Limit))
		d.Detail = strings.TrimRight(b.Describe(p.Limit), "\n")
	}
}

func memoryNode(r *Recipe, key string) *yaml.Node {
	return valueOf(valueOf(r.Doc.Content[0], "memory"), key)
}

// checkModel resolves the model, inspects its headers, and runs every stage kind's own
// model-aware checks against them.
func (l *linter) checkModel(r *Recipe, p *Plan) {
	at := valueOf(r.Doc.Content[0], "model")
	dir, err := modeldir.Resolve(r.Model, r.Dir)
	if err != nil {
		d := l.errorf(at, "%v", err)
		var nf *modeldir.NotFound
		if errors.As(err, &nf) {
			d.Detail = nf.Help()
		}
		return
	}
	info, err := modeldir.Inspect(dir)
	if err != nil {
		l.errorf(at, "%v", err)
		return
	}
	p.Model = info
	l.checkModelFiles(at, info)
	for i := range r.Stages {
		s := &r.Stages[i]
		if kind, ok := stages.Get(s.Kind); ok && s.Config != nil {
			l.problems(r, s, kind.CheckModel(s.Config, info))
		}
	}
}

// problems turns a kind's findings about stage s into located diagnostics.
func (l *linter) problems(r *Recipe, s *StageDecl, ps []stages.Problem) {
	for _, p := range ps {
		n := locate(r.Doc.Content[0], s.Node, p.At)
		var d *Diagnostic
		if p.Warning {
			d = l.warnf(n, "%s", p.Summary)
		} else {
			d = l.errorf(n, "%s", p.Summary)
		}
		d.Detail = p.Detail
	}
}

// locate finds the node a problem's path names ("with.keys.2" from the stage, "/model" from
// the top), stopping at the deepest node the recipe spells out.
func locate(root, stage *yaml.Node, path string) *yaml.Node {
	n := stage
	if rest, ok := strings.CutPrefix(path, "/"); ok {
		n, path = root, rest
	}
	if path == "" {
		return n
	}
	for part := range strings.SplitSeq(path, ".") {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			next = valueOf(n, part)
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(part); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// Describe renders the plan: what runs at setup, what fires each step and when, and teardown.
func (p *Plan) Describe() string {
	var b strings.Builder
	r := p.Recipe
	fmt.Fprintf(&b, "recipe %s (version %d): %d steps, memory limit %s", r.Name, r.Version, r.Steps, stages.Bytes(p.Limit))
	if r.Memory.Limit.Auto {
		fmt.Fprintf(&b, " (auto: %.0f%% of this machine)", r.Memory.AutoShare*100)
	}
	b.WriteString("\n")
	if m := p.Model; m != nil {
		q := "not quantized"
		if c := m.Config.Quantization; c != nil {
			q = fmt.Sprintf("%d-bit, group %d", c.Default.Bits, c.Default.GroupSize)
		}
		fmt.Fprintf(&b, "model %s: %s, %d layers, hidden %d, vocab %d, %s, %d tensors\n  at %s\n",
			r.Model, m.Config.ModelType, m.Config.NumHiddenLayers, m.Config.HiddenSize, m.Config.VocabSize, q, len(m.Tensors), m.Dir)
	}
	for _, d := range p.Data {
		fmt.Fprintf(&b, "data %s (%s): %d %s rows", d.Split, d.File, d.Rows, d.Format)
		if d.Turns > 0 {
			fmt.Fprintf(&b, ", %d messages", d.Turns)
		}
		fmt.Fprintf(&b, "; train_on %s: %d tokens trained, %d masked", d.TrainOn, d.Trained, d.Masked)
		if d.NothingToTrain > 0 {
			fmt.Fprintf(&b, "; %d rows with nothing to train", d.NothingToTrain)
		}
		b.WriteString("\n")
	}
	b.WriteString(p.Decision.Describe(p.Limit))
	section := func(title string, ev stage.Event) {
		list := p.Events[ev]
		if len(list) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s:\n", title)
		for i, s := range list {
			line := fmt.Sprintf("  %d. %-14s %-16s", i+1, s.ID, s.Kind)
			if t := s.Trigger(); t != "" {
				line += " " + t
			} else if ev.PerStep() {
				line += " always"
			}
			if len(s.After) > 0 {
				line += " (after " + strings.Join(s.After, ", ") + ")"
			}
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
	}
	section("setup, in order", stage.Setup)
	section("each step, before", stage.BeforeStep)
	section("each step", stage.OnStep)
	section("each step, after", stage.AfterStep)
	section("after each eval", stage.OnEval)
	section("teardown", stage.Teardown)
	return b.String()
}

// PlanJSON is the plan as `yai validate --json` prints it.
type PlanJSON struct {
	File   string              `json:"file"`
	Name   string              `json:"name"`
	Steps  int                 `json:"steps"`
	Limit  int64               `json:"limit"`
	Model  *ModelJSON          `json:"model,omitempty"`
	Budget *memplan.BudgetJSON `json:"memory_budget,omitempty"`
	// Schedule is how each step will be computed when the whole batch would not fit.
	Schedule *ScheduleJSON `json:"schedule,omitempty"`
	// Data is what each data file holds and what the loss counts of it.
	Data   []DataSummary `json:"data,omitempty"`
	Stages []StageJSON   `json:"stages"`
}

// ModelJSON describes the inspected model.
type ModelJSON struct {
	Ref       string `json:"ref"`
	Dir       string `json:"dir"`
	ModelType string `json:"model_type"`
	Layers    int    `json:"layers"`
	Tensors   int    `json:"tensors"`
	Bits      int    `json:"bits,omitempty"`
}

// StageJSON is one stage of the plan, in execution order.
type StageJSON struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	Event    string   `json:"on"`
	After    []string `json:"after,omitempty"`
	When     string   `json:"when,omitempty"`
	Every    int      `json:"every,omitempty"`
	Settings any      `json:"with"`
}

// JSON returns the plan in its JSON shape.
func (p *Plan) JSON() *PlanJSON {
	r := p.Recipe
	out := &PlanJSON{File: r.File, Name: r.Name, Steps: r.Steps, Limit: p.Limit, Data: p.Data, Stages: []StageJSON{}}
	if m := p.Model; m != nil {
		out.Model = &ModelJSON{Ref: r.Model, Dir: m.Dir, ModelType: m.Config.ModelType, Layers: m.Config.NumHiddenLayers, Tensors: len(m.Tensors)}
		if q := m.Config.Quantization; q != nil {
			out.Model.Bits = q.Default.Bits
		}
	}
	if d := p.Decision; d.Budget != nil {
		out.Budget = d.Budget.JSON(p.Limit)
	}
	if d := p.Decision; d.ScheduleBudget != nil {
		out.Schedule = &ScheduleJSON{MicroBatches: d.Schedule.MicroBatches, GradCheckpoint: d.Schedule.GradCheckpoint,
			Peak: d.ScheduleBudget.Peak(), Fits: d.ScheduleBudget.Peak() <= p.Limit}
	}
	for _, ev := range stage.Events {
		for _, s := range p.Events[ev] {
			out.Stages = append(out.Stages, StageJSON{ID: s.ID, Kind: s.Kind, Event: string(s.Event), After: s.After, When: s.When, Every: s.Every, Settings: settingsMap(s)})
		}
	}
	return out
}

// settingsMap renders a stage's typed settings under their recipe keys.
func settingsMap(s *StageDecl) map[string]any {
	kind, ok := stages.Get(s.Kind)
	out := map[string]any{}
	if !ok || s.Config == nil {
		return out
	}
	v := reflect.ValueOf(s.Config).Elem()
	for _, f := range kind.Fields {
		out[f.Name] = v.FieldByIndex(f.Index).Interface()
	}
	return out
}

// RunInfo is what a backend learns about the run of this plan.
func (p *Plan) RunInfo() stages.RunInfo {
	r := p.Recipe
	info := stages.RunInfo{Steps: r.Steps, Seed: r.Seed, DataDir: r.Data, Decision: p.Decision, Strict: p.Strict}
	// an hf: name not in the hub cache stays as written: the dry run reports it
	if dir, err := data.ResolveDataDir(r.Data, r.Dir); err == nil {
		info.DataDir = dir
	}
	if p.Model != nil {
		info.ModelDir = p.Model.Dir
	}
	return info
}

// ScheduleJSON is the plan's schedule as `yai validate --json` prints it.
type ScheduleJSON struct {
	MicroBatches   int   `json:"micro_batches"`
	GradCheckpoint bool  `json:"grad_checkpoint"`
	Peak           int64 `json:"estimated_peak"`
	Fits           bool  `json:"fits"`
}

// DataConfig is the settings of the recipe's data stage, nil without one.
func (r *Recipe) DataConfig() *stages.DataConfig {
	_, c := dataStage(r)
	return c
}

// DataFiles are the data files the run reads, every shard of each split: the data stage's
// train and valid splits and the data directory's test split (an eval stage may read it), as
// data.FindSplit finds them. A split not found has none; none without a data stage.
func (p *Plan) DataFiles() []string {
	_, cfg := dataStage(p.Recipe)
	dir := p.RunInfo().DataDir
	if cfg == nil || dir == "" {
		return nil
	}
	var files []string
	for _, s := range []struct{ split, name string }{{"train", cfg.Train}, {"valid", cfg.Valid}, {"test", ""}} {
		if _, f, err := data.FindSplitFiles(dir, s.split, s.name); err == nil {
			files = append(files, f...)
		}
	}
	return files
}
