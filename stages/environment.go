package stages

import (
	"fmt"
	"reflect"

	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/stages/stage"
)

// Environment is the set of stage kinds one program can run: the kinds that need no backend,
// plus those a backend implements. It is an explicit value, made by the program and handed to
// validation (a stage whose kind it cannot run is a located error) and to the engine.
type Environment struct {
	// unmeasured are the figures this program cannot read on this platform, with the reason.
	unmeasured map[string]string
	builds     map[*Kind]func(config, state any) (stage.Stage, error)
	open       func(RunInfo) (state any, closeFn func(), err error)
	stateType  reflect.Type
	backend    string
	device     memplan.Device
	// distributed reports whether this build can run a distributed backend (nil: unknown)
	distributed func(backend string) bool
}

// RunInfo is what a backend learns about the run whose stages it builds.
type RunInfo struct {
	ModelDir string // the resolved model directory
	DataDir  string // the resolved data directory ("" when the recipe has none)
	Steps    int
	Seed     int
	// Decision is the plan's: the device, compute dtype and products the model is set up
	// with, MLX's limits, and the schedule the step starts with.
	Decision memplan.Decision
	Strict   bool  // run as written: no schedule changes
	Ranks    Ranks // the process group of a distributed run; nil alone
}

// NewEnvironment returns an environment that runs every kind needing no backend.
func NewEnvironment() *Environment {
	e := &Environment{builds: map[*Kind]func(config, state any) (stage.Stage, error){}, unmeasured: platformUnmeasured()}
	for _, k := range catalog {
		if k.build != nil {
			build := k.build
			e.builds[k] = func(config, _ any) (stage.Stage, error) { return build(config) }
		}
	}
	return e
}

// SetBackend installs the backend whose per-run state S the kinds it implements share: open
// makes that state when a run starts, and its close function frees it when the run ends.
func SetBackend[S any](e *Environment, name string, open func(RunInfo) (S, func(), error)) {
	if e.open != nil {
		panic("stages: environment already has the " + e.backend + " backend")
	}
	e.backend, e.stateType = name, reflect.TypeFor[S]()
	e.open = func(info RunInfo) (any, func(), error) { return open(info) }
}

// Implement makes the environment's backend build stages of kind k. S must be the backend's
// state type (a mismatch is a programming error, caught when the environment is made).
func Implement[C, S any](e *Environment, k KindOf[C], build func(c *C, state S) (stage.Stage, error)) {
	if e.stateType != reflect.TypeFor[S]() {
		panic(fmt.Sprintf("stages: %s implemented over %v, but the backend state is %v", k.Name, reflect.TypeFor[S](), e.stateType))
	}
	e.builds[k.Kind] = func(config, state any) (stage.Stage, error) { return build(config.(*C), state.(S)) }
}

// Runs reports whether the environment can build stages of kind k.
func (e *Environment) Runs(k *Kind) bool { return e.builds[k] != nil }

// SetDevice records what the backend computes on, for the run's memory plan.
func (e *Environment) SetDevice(d memplan.Device) { e.device = d }

// Device is what the backend computes on: unset when it has not said (the plan then
// assumes the platform's device).
func (e *Environment) Device() memplan.Device { return e.device }

// SetDistributed records which distributed backends ("ring", "mpi", "nccl", "any") this
// build can run, for validation.
func (e *Environment) SetDistributed(available func(backend string) bool) { e.distributed = available }

// DistributedAvailable reports whether this build can run the distributed backend; known is
// false when the environment cannot tell.
func (e *Environment) DistributedAvailable(backend string) (ok, known bool) {
	if e.distributed == nil {
		return false, false
	}
	return e.distributed(backend), true
}

// Backend names the environment's backend ("" when it has none).
func (e *Environment) Backend() string { return e.backend }

// Open starts building the stages of one run: it makes the backend's state for it.
func (e *Environment) Open(info RunInfo) (*Builder, error) {
	b := &Builder{env: e}
	if e.open != nil {
		state, closeFn, err := e.open(info)
		if err != nil {
			return nil, err
		}
		b.state, b.close = state, closeFn
	}
	return b, nil
}

// Builder builds the stages of one run over the backend state they share.
type Builder struct {
	env   *Environment
	state any
	close func()
}

// Build makes a stage of kind k from its decoded settings.
func (b *Builder) Build(k *Kind, config any) (stage.Stage, error) {
	build := b.env.builds[k]
	if build == nil {
		return nil, fmt.Errorf("stage kind %q cannot run in this build%s", k.Name, b.env.missing())
	}
	return build(config, b.state)
}

// State is the backend's state for the run (nil without a backend).
func (b *Builder) State() any { return b.state }

// Close frees the backend's state for the run.
func (b *Builder) Close() {
	if b.close != nil {
		b.close()
		b.close = nil
	}
}

func (e *Environment) missing() string {
	if e.backend == "" {
		return " (it has no training backend)"
	}
	return " (the " + e.backend + " backend does not implement it)"
}

// Missing explains why a kind cannot run, for diagnostics.
func (e *Environment) Missing(k *Kind) string {
	return fmt.Sprintf("stage kind %q cannot run in this build%s", k.Name, e.missing())
}

// Unmeasured says why a figure cannot be read by this program on this platform ("" and false
// when it can): a trigger or guard that uses it is a validation error, never a silent zero.
func (e *Environment) Unmeasured(figure string) (string, bool) {
	why, ok := e.unmeasured[figure]
	return why, ok
}

// SetMeasured records that the program reads figure after all (a backend that measures it).
func (e *Environment) SetMeasured(figure string) { delete(e.unmeasured, figure) }

// SetUnmeasured records that figure cannot be read, and why.
func (e *Environment) SetUnmeasured(figure, why string) { e.unmeasured[figure] = why }
