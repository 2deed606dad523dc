package stages

import (
	"fmt"
	"reflect"
	"slices"
	"sort"

	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages/stage"
)

// Kind is one stage kind: its spec (plain data that lint, `yai stages` and the JSON Schema
// read), the checks it owns, and for a kind that needs no backend, how to build it. Each kind
// is declared once, in its own file, with Define.
type Kind struct {
	Name    string
	Summary string
	Doc     string        // a paragraph for `yai stages NAME`
	Config  reflect.Type  // the settings struct (not a pointer)
	Events  []stage.Event // events the kind may listen to; the first is the default
	Once    bool          // at most one stage of this kind per recipe
	Fields  []Field
	// Expected, when set, is the warning for a recipe that has stages but none of this kind.
	Expected string
	// ResumeSafe: changing, adding or removing a stage of this kind between a checkpoint and
	// its resume cannot change the math already done (memory, logging, evaluation, saving).
	ResumeSafe bool

	build       func(config any) (stage.Stage, error) // nil when a backend builds the kind
	checkModel  func(config any, m *modeldir.Info) []Problem
	checkRecipe func(config any, r Recipe) []Problem
	workload    func(config any, w *memplan.Workload)
}

// Def declares a stage kind whose settings are C. Only Name, Summary, Events and Build (or a
// backend's Implement) are needed; the hooks let the kind check itself in the dry run.
type Def[C any] struct {
	Name, Summary, Doc string
	Events             []stage.Event
	Once               bool
	Expected           string
	ResumeSafe         bool

	// Build makes the stage of a kind that needs no backend (clear-cache, guard, log).
	// Kinds that need the training core leave it nil; a backend implements them.
	Build func(c *C) (stage.Stage, error)
	// CheckModel checks the settings against the model the dry run inspected (config.json
	// and safetensors headers; no weights).
	CheckModel func(c *C, m *modeldir.Info) []Problem
	// CheckRecipe checks what the settings imply about the recipe's other stages.
	CheckRecipe func(c *C, r Recipe) []Problem
	// Workload adds what the memory estimate needs from this kind's settings, as written.
	Workload func(c *C, w *memplan.Workload)
}

// KindOf is a declared kind whose settings are C. Backends implement kinds through it, so a
// backend cannot name a kind that does not exist or build it from the wrong settings.
type KindOf[C any] struct{ *Kind }

// Defaults returns new settings with every default applied.
func (k KindOf[C]) Defaults() *C { return k.NewConfig().(*C) }

// catalog holds every declared kind by name: the recipe names kinds by string.
var catalog = map[string]*Kind{}

// Define declares a stage kind. Each kind's file calls it once, in a package variable.
func Define[C any](d Def[C]) KindOf[C] {
	if _, dup := catalog[d.Name]; dup {
		panic("stages: duplicate kind " + d.Name)
	}
	if len(d.Events) == 0 {
		panic("stages: kind " + d.Name + " allows no events")
	}
	k := &Kind{Name: d.Name, Summary: d.Summary, Doc: d.Doc, Config: reflect.TypeFor[C](),
		Events: d.Events, Once: d.Once, Expected: d.Expected, ResumeSafe: d.ResumeSafe}
	k.Fields = FieldsOf(k.Config)
	if d.Build != nil {
		k.build = func(config any) (stage.Stage, error) { return d.Build(config.(*C)) }
	}
	if d.CheckModel != nil {
		k.checkModel = func(config any, m *modeldir.Info) []Problem { return d.CheckModel(config.(*C), m) }
	}
	if d.CheckRecipe != nil {
		k.checkRecipe = func(config any, r Recipe) []Problem { return d.CheckRecipe(config.(*C), r) }
	}
	if d.Workload != nil {
		k.workload = func(config any, w *memplan.Workload) { d.Workload(config.(*C), w) }
	}
	catalog[d.Name] = k
	return KindOf[C]{k}
}

// Get returns a declared kind.
func Get(name string) (*Kind, bool) {
	k, ok := catalog[name]
	return k, ok
}

// Kinds lists every declared kind, sorted by name.
func Kinds() []*Kind {
	out := make([]*Kind, 0, len(catalog))
	for _, k := range catalog {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// KindNames lists the names of every declared kind, sorted.
func KindNames() []string {
	var out []string
	for _, k := range Kinds() {
		out = append(out, k.Name)
	}
	return out
}

// DefaultEvent is the event a stage of this kind listens to when the recipe gives no `on:`.
func (k *Kind) DefaultEvent() stage.Event { return k.Events[0] }

// Allows reports whether the kind may listen to e.
func (k *Kind) Allows(e stage.Event) bool { return slices.Contains(k.Events, e) }

// NewConfig returns a pointer to a new settings struct with every default applied.
func (k *Kind) NewConfig() any {
	v := reflect.New(k.Config)
	if err := ApplyDefaults(v.Elem(), k.Fields); err != nil {
		panic(fmt.Sprintf("stages: kind %s: %v", k.Name, err))
	}
	return v.Interface()
}

// CheckModel runs the kind's model-aware checks on one stage's settings.
func (k *Kind) CheckModel(config any, m *modeldir.Info) []Problem {
	if k.checkModel == nil || m == nil {
		return nil
	}
	return k.checkModel(config, m)
}

// CheckRecipe runs the kind's cross-stage rules on one stage's settings.
func (k *Kind) CheckRecipe(config any, r Recipe) []Problem {
	if k.checkRecipe == nil {
		return nil
	}
	return k.checkRecipe(config, r)
}

// AddWorkload adds what one stage's settings contribute to the memory estimate.
func (k *Kind) AddWorkload(config any, w *memplan.Workload) {
	if k.workload != nil {
		k.workload(config, w)
	}
}

// ShapesWorkload reports whether the kind contributes to the memory estimate.
func (k *Kind) ShapesWorkload() bool { return k.workload != nil }

// Recipe is what a kind's cross-stage rules can ask about the recipe.
type Recipe interface {
	// Count is the number of stages of kind k.
	Count(k *Kind) int
	// World is the number of ranks training together (distributed.ranks; 1 alone).
	World() int
}

// Problem is a kind's finding about one stage. At is the path of the setting it concerns,
// relative to the stage ("with.keys.2", "kind"); a path starting with "/" is from the recipe's
// top ("/model"). Where the recipe does not spell the setting out (a default), the position
// falls back to the nearest enclosing node the recipe does have.
type Problem struct {
	Warning bool
	At      string
	Summary string
	Detail  string
}

// Errorf is an error at a setting.
func Errorf(at, format string, args ...any) Problem {
	return Problem{At: at, Summary: fmt.Sprintf(format, args...)}
}

// Warnf is a warning at a setting.
func Warnf(at, format string, args ...any) Problem {
	return Problem{Warning: true, At: at, Summary: fmt.Sprintf(format, args...)}
}
