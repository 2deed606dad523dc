package stage

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Figures is the typed environment every trigger expression is compiled against and run on:
// the run's figures at the moment a stage fires.
// Byte counts and step numbers are int64 so `step % 3 == 0` works; rates and losses are float64.
type Figures struct {
	MLX     MLX     `expr:"mlx"`
	RSS     int64   `expr:"rss" unit:"bytes" memory:"true" doc:"memory of the process as the system counts it, bytes: resident set size on Linux, physical footprint on macOS (what Activity Monitor shows)"`
	Swap    int64   `expr:"swap" unit:"bytes" memory:"true" doc:"swap in use on the machine, bytes: the system is short of memory when it grows"`
	Limit   int64   `expr:"limit" unit:"bytes" doc:"memory.limit of the recipe, bytes"`
	Growth  float64 `expr:"growth" unit:"bytes/step" doc:"MLX active bytes gained per step (median over a window, robust to spikes)"`
	Step    int64   `expr:"step" doc:"current step, from 1"`
	Steps   int64   `expr:"steps" doc:"total steps of the run"`
	Loss    float64 `expr:"loss" doc:"training loss of the last step"`
	ValLoss float64 `expr:"val_loss" doc:"last validation loss (0 before the first eval)"`
	Tokens  int64   `expr:"tokens" doc:"tokens trained on so far"`
	Elapsed float64 `expr:"elapsed" doc:"seconds since the loop started"`
	Rank    int64   `expr:"rank" doc:"this process's rank in a distributed run, from 0 (0 alone)"`
	World   int64   `expr:"world" doc:"ranks training together (1 alone)"`

	MicroBatches  int64 `expr:"micro_batches" doc:"parts each batch is split into by the step's schedule (1: whole)"`
	Checkpointing int64 `expr:"checkpointing" doc:"1 when the step recomputes the adapted blocks in the backward pass, else 0"`
	Traces        int64 `expr:"traces" doc:"compiled traces the step holds: one per function, loss chunk and batch shape met; bucketed widths and loss-position counts bound it"`

	KB  int64 `expr:"KB" constant:"true" doc:"1000 bytes"`
	MB  int64 `expr:"MB" constant:"true" doc:"1000² bytes"`
	GB  int64 `expr:"GB" constant:"true" doc:"1000³ bytes"`
	KiB int64 `expr:"KiB" constant:"true" doc:"1024 bytes"`
	MiB int64 `expr:"MiB" constant:"true" doc:"1024² bytes"`
	GiB int64 `expr:"GiB" constant:"true" doc:"1024³ bytes"`
}

// MLX holds MLX's own memory figures.
type MLX struct {
	Active  int64 `expr:"active" unit:"bytes" memory:"true" doc:"bytes held by live MLX arrays"`
	Peak    int64 `expr:"peak" unit:"bytes" memory:"true" doc:"highest active bytes within the current step (reset as each step begins)"`
	PeakRun int64 `expr:"peak_run" unit:"bytes" memory:"true" doc:"highest active bytes of the whole run"`
	Cache   int64 `expr:"cache" unit:"bytes" memory:"true" doc:"bytes in MLX's buffer cache"`
	Arrays  int64 `expr:"arrays" doc:"live MLX array handles"`
}

// NewFigures returns Figures with the unit constants set.
func NewFigures() Figures {
	return Figures{KB: 1000, MB: 1_000_000, GB: 1_000_000_000, KiB: 1 << 10, MiB: 1 << 20, GiB: 1 << 30}
}

// FigureDoc documents one name a trigger can use.
type FigureDoc struct {
	Name     string
	Type     string // int or float
	Unit     string // "bytes", "bytes/step", or "" for a count, a loss or seconds
	Memory   bool   // a measured memory figure, which a guard can watch
	Constant bool   // a unit (KB, MiB, …), not a figure
	Doc      string
}

// FigureDocs lists every name of Figures, as a trigger spells it, in declaration order.
func FigureDocs() []FigureDoc { return slices.Clone(figureDocs()) }

var figureDocs = sync.OnceValue(func() []FigureDoc {
	var out []FigureDoc
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := prefix + f.Tag.Get("expr")
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, name+".")
				continue
			}
			typ := "int"
			if f.Type.Kind() == reflect.Float64 {
				typ = "float"
			}
			out = append(out, FigureDoc{Name: name, Type: typ, Unit: f.Tag.Get("unit"),
				Memory: f.Tag.Get("memory") == "true", Constant: f.Tag.Get("constant") == "true", Doc: f.Tag.Get("doc")})
		}
	}
	walk(reflect.TypeFor[Figures](), "")
	return out
})

// Figure returns the value of a name from FigureDocs as float64 (false if the name is unknown).
func (e Figures) Figure(name string) (float64, bool) {
	v := reflect.ValueOf(e)
	for part := range strings.SplitSeq(name, ".") {
		found := false
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("expr") == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	switch v.Kind() {
	case reflect.Int64:
		return float64(v.Int()), true
	case reflect.Float64:
		return v.Float(), true
	}
	return 0, false
}

// FigureNames lists the figures of FigureDocs (every name but the unit constants), sorted.
func FigureNames() []string { return figureNames(func(n FigureDoc) bool { return !n.Constant }) }

// TriggerNames lists every name a trigger can use, units included, sorted.
func TriggerNames() []string { return figureNames(func(FigureDoc) bool { return true }) }

// MemoryFigureNames lists the measured memory figures (what a guard can watch), sorted.
func MemoryFigureNames() []string { return figureNames(func(n FigureDoc) bool { return n.Memory }) }

func figureNames(keep func(FigureDoc) bool) []string {
	var out []string
	for _, n := range figureDocs() {
		if keep(n) {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out
}

// FigureUnit is the unit of a figure ("" when it is not a byte figure or is unknown).
func FigureUnit(name string) string {
	for _, n := range figureDocs() {
		if n.Name == name {
			return n.Unit
		}
	}
	return ""
}
