package stages

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
)

// Constructor builds a runnable stage from its decoded settings (a pointer to the kind's config
// struct, defaults applied and ranges checked).
type Constructor func(config any) (Stage, error)

// Kind is the registered description of one stage kind. It is plain data: lint, `yai stages`,
// and the JSON Schema all read it.
type Kind struct {
	Name    string
	Summary string
	Doc     string       // a paragraph for `yai stages NAME`
	Config  reflect.Type // the settings struct (not a pointer)
	Events  []Event      // events the kind may listen to; the first is the default
	Once    bool         // at most one stage of this kind per recipe
	New     Constructor  // nil when the runner lives outside this package (training core)
	Fields  []Field
}

var registry = map[string]*Kind{}

// Register adds a kind. Each kind's file calls it from init.
func Register(k Kind) {
	if _, dup := registry[k.Name]; dup {
		panic("stages: duplicate kind " + k.Name)
	}
	if len(k.Events) == 0 {
		panic("stages: kind " + k.Name + " allows no events")
	}
	k.Fields = FieldsOf(k.Config)
	registry[k.Name] = &k
}

// Get returns a registered kind.
func Get(name string) (*Kind, bool) {
	k, ok := registry[name]
	return k, ok
}

// Kinds lists every registered kind, sorted by name.
func Kinds() []*Kind {
	out := make([]*Kind, 0, len(registry))
	for _, k := range registry {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// KindNames lists the names of every registered kind, sorted.
func KindNames() []string {
	var out []string
	for _, k := range Kinds() {
		out = append(out, k.Name)
	}
	return out
}

// DefaultEvent is the event a stage of this kind listens to when the recipe gives no `on:`.
func (k *Kind) DefaultEvent() Event { return k.Events[0] }

// Allows reports whether the kind may listen to e.
func (k *Kind) Allows(e Event) bool { return slices.Contains(k.Events, e) }

// NewConfig returns a pointer to a new settings struct with every default applied.
func (k *Kind) NewConfig() any {
	v := reflect.New(k.Config)
	if err := ApplyDefaults(v.Elem(), k.Fields); err != nil {
		panic(fmt.Sprintf("stages: kind %s: %v", k.Name, err))
	}
	return v.Interface()
}

// Runners maps stage kinds to constructors supplied by the program that links the training
// core and MLX; they take precedence over a kind's own constructor.
type Runners map[string]Constructor

// Build constructs a stage of kind k, preferring runners over the kind's own constructor.
func (k *Kind) Build(config any, runners Runners) (Stage, error) {
	if c := runners[k.Name]; c != nil {
		return c(config)
	}
	if k.New != nil {
		return k.New(config)
	}
	return nil, fmt.Errorf("stage kind %q has no runner in this build", k.Name)
}

// Runner adapts a constructor over a typed config to Constructor, for Runners maps:
//
//	stages.Runners{"step": stages.Runner(func(c *stages.StepConfig) (stages.Stage, error) {…})}
func Runner[C any](f func(*C) (Stage, error)) Constructor {
	return func(config any) (Stage, error) {
		c, ok := config.(*C)
		if !ok {
			return nil, fmt.Errorf("stage runner wants %T, got %T", (*C)(nil), config)
		}
		return f(c)
	}
}
