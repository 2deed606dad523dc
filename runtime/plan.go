package runtime

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/yai-dev/yai/stages"
	"go.yaml.in/yaml/v3"
)

// Plan is a checked recipe ready to run: stages in dependency order, grouped by event, the
// memory limit resolved, and (after a model check) what the model looks like.
type Plan struct {
	Recipe *Recipe
	Order  []*StageDecl
	Events map[stages.Event][]*StageDecl
	Limit  int64      // memory.limit in bytes (auto resolved against this machine)
	Model  *ModelInfo // nil when the model was not inspected
	Budget *Budget    // memory estimate; nil when the model was not inspected
}

// ValidateOptions tunes a dry run.
type ValidateOptions struct {
	SkipModel bool // do not resolve or inspect the model (lint and graph only)
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
	l := &linter{file: r.File, overrides: r.overrides, diags: diags}
	p := &Plan{Recipe: r}
	p.Limit = int64(r.Memory.Limit.Bytes)
	if r.Memory.Limit.Auto {
		p.Limit = int64(float64(PhysicalMemory()) * r.Memory.AutoShare)
		if p.Limit == 0 {
			l.errorf(memoryNode(r, "limit"), "limit: auto cannot read this machine's memory; give a size such as 7GB")
		}
	}
	if !l.diags.HasErrors() {
		p.Order = Order(r)
		p.Events = ByEvent(p.Order)
	}
	if !opts.SkipModel && r.Model != "" {
		l.checkModel(r, p)
	}
	if p.Model != nil && !l.diags.HasErrors() {
		l.checkBudget(r, p)
	}
	sortDiagnostics(l.diags)
	if l.diags.HasErrors() {
		return nil, l.diags
	}
	return p, l.diags
}

// checkBudget estimates the run's memory: a floor above the limit can never run; a peak
// above it is likely to cross the limit on the longest batches.
func (l *linter) checkBudget(r *Recipe, p *Plan) {
	b := EstimateBudget(p.Model, r)
	p.Budget = &b
	at := memoryNode(r, "limit")
	switch {
	case p.Limit <= 0:
	case b.Floor() > p.Limit:
		d := l.errorf(at, "limit: %s is below the estimated floor of %s (weights and training state)", stages.Bytes(p.Limit), stages.Bytes(b.Floor()))
		d.Detail = strings.TrimRight(b.Describe(p.Limit), "\n")
	case b.Peak() > p.Limit:
		d := l.warnf(at, "limit: estimated peak %s is above the limit %s; lower batch_size, max_seq_length or layers, or turn on grad_checkpoint", stages.Bytes(b.Peak()), stages.Bytes(p.Limit))
		d.Detail = strings.TrimRight(b.Describe(p.Limit), "\n")
	}
}

func memoryNode(r *Recipe, key string) *yaml.Node {
	return valueOf(valueOf(r.Doc.Content[0], "memory"), key)
}

// checkModel resolves the model and checks attach-lora and reload-selective against it.
func (l *linter) checkModel(r *Recipe, p *Plan) {
	at := valueOf(r.Doc.Content[0], "model")
	dir, err := ResolveModel(r.Model, r.Dir)
	if err != nil {
		d := l.errorf(at, "%v", err)
		var nf *ModelNotFound
		if errors.As(err, &nf) {
			d.Detail = nf.Help()
		}
		return
	}
	info, err := InspectModel(dir)
	if err != nil {
		l.errorf(at, "%v", err)
		return
	}
	p.Model = info
	layers := info.Config.NumHiddenLayers
	for _, s := range r.Stages {
		with := valueOf(s.Node, "with")
		switch c := s.Config.(type) {
		case *stages.Load4BitConfig:
			if info.Config.Quantization == nil {
				l.warnf(valueOf(s.Node, "kind"), "model %s has no quantization in config.json; load-4bit expects a quantized model", r.Model)
			}
		case *stages.AttachLoRAConfig:
			if c.Layers > layers {
				l.errorf(nodeOr(valueOf(with, "layers"), s.Node), "layers: %d is more than the model's %d layers", c.Layers, layers)
			}
			if len(info.Tensors) == 0 {
				l.warnf(at, "no safetensors headers in %s: LoRA keys not checked", dir)
				continue
			}
			modules := info.BlockModules(layers - 1)
			keys := valueOf(with, "keys")
			for i, k := range c.Keys {
				if _, ok := MatchModule(modules, k); !ok {
					n := s.Node
					if keys != nil && i < len(keys.Content) {
						n = keys.Content[i]
					}
					d := l.errorf(n, "keys: %q matches no module of block %d%s", k, layers-1, didYouMean(k, modules))
					d.Detail = "modules: " + strings.Join(modules, ", ")
				}
			}
		case *stages.ReloadSelectiveConfig:
			if len(info.Tensors) == 0 {
				continue
			}
			list := valueOf(with, "tensors")
			for i, t := range c.Tensors {
				if t == "targets" || t == "head" || matchesTensor(info, t) {
					continue
				}
				n := s.Node
				if list != nil && i < len(list.Content) {
					n = list.Content[i]
				}
				l.errorf(n, "tensors: %q names no tensor of the model (use targets, head, or a name suffix)", t)
			}
		}
	}
}

func matchesTensor(info *ModelInfo, suffix string) bool {
	for name := range info.Tensors {
		if strings.HasSuffix(name, suffix) || strings.Contains(name, suffix+".") {
			return true
		}
	}
	return false
}

func nodeOr(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
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
	if p.Budget != nil {
		b.WriteString(p.Budget.Describe(p.Limit))
	}
	section := func(title string, ev stages.Event) {
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
	section("setup, in order", stages.Setup)
	section("each step, before", stages.BeforeStep)
	section("each step", stages.OnStep)
	section("each step, after", stages.AfterStep)
	section("after each eval", stages.OnEval)
	section("teardown", stages.Teardown)
	return b.String()
}

// PlanJSON is the plan as `yai validate --json` prints it.
type PlanJSON struct {
	File   string      `json:"file"`
	Name   string      `json:"name"`
	Steps  int         `json:"steps"`
	Limit  int64       `json:"limit"`
	Model  *ModelJSON  `json:"model,omitempty"`
	Budget *BudgetJSON `json:"memory_budget,omitempty"`
	Stages []StageJSON `json:"stages"`
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
	out := &PlanJSON{File: r.File, Name: r.Name, Steps: r.Steps, Limit: p.Limit, Stages: []StageJSON{}}
	if m := p.Model; m != nil {
		out.Model = &ModelJSON{Ref: r.Model, Dir: m.Dir, ModelType: m.Config.ModelType, Layers: m.Config.NumHiddenLayers, Tensors: len(m.Tensors)}
		if q := m.Config.Quantization; q != nil {
			out.Model.Bits = q.Default.Bits
		}
	}
	if p.Budget != nil {
		out.Budget = p.Budget.JSON(p.Limit)
	}
	for _, ev := range stages.Events {
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
