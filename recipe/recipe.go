package recipe

import (
	"reflect"

	"github.com/expr-lang/expr/vm"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
	"go.yaml.in/yaml/v3"
)

// Version is the recipe format version this yai reads.
const Version = 1

// Recipe is a decoded recipe of format version 1. Its YAML keys are its documentation:
//
//	version: 1
//	name: llama-7gb
//	model: llama-8b
//	data: data/chat
//	steps: 1000
//	memory: {limit: 7GB}
//	stages:
//	  - {id: clear, kind: clear-cache, every: 10}
type Recipe struct {
	Version     int            `yaml:"version" required:"true" doc:"recipe format version; this yai reads 1"`
	Name        string         `yaml:"name" required:"true" doc:"short name, used for run directories"`
	Description string         `yaml:"description" doc:"what the recipe is for"`
	Model       string         `yaml:"model" required:"true" doc:"model directory (relative to the recipe file), Hugging Face repo id found in the local cache, or an alias such as llama-8b"`
	Data        string         `yaml:"data" doc:"dataset directory (relative to the recipe file) holding train.jsonl and valid.jsonl, or their Parquet or Arrow files; hf:owner/name is a dataset in the local Hugging Face hub cache"`
	Steps       int            `yaml:"steps" default:"1000" min:"1" max:"100000000" doc:"optimizer steps to run"`
	Seed        int            `yaml:"seed" default:"0" min:"0" doc:"random seed for LoRA initialisation and dropout"`
	Memory      MemorySettings `yaml:"memory" required:"true" doc:"memory budget of the run"`
	Distributed Distributed    `yaml:"distributed" doc:"data-parallel training over MLX's distributed backend: ranks, backend, peer timeout"`
	Stages      []StageDecl    `yaml:"stages" required:"true" doc:"the stages of the run, wired by after: and fired by events and triggers"`

	File string     `yaml:"-"` // the recipe file as given
	Dir  string     `yaml:"-"` // its directory: relative model and data paths resolve here
	Doc  *yaml.Node `yaml:"-"` // the document with overrides applied

	overrides map[*yaml.Node]string // nodes set by --set, for positions of later checks
}

// MemorySettings is the recipe's memory: section, the budget of the run.
type MemorySettings struct {
	Limit      stages.Limit `yaml:"limit" required:"true" doc:"budget for the run: a size such as 7GB or 7.5GB, or auto (a share of physical memory)"`
	AutoShare  float64      `yaml:"auto_share" default:"0.7" min:"0.05" max:"0.95" doc:"with limit: auto, the share of physical memory used as the limit"`
	CacheLimit stages.Bytes `yaml:"cache_limit" doc:"MLX buffer-cache limit; empty keeps MLX's default"`
	WiredLimit stages.Bytes `yaml:"wired_limit" doc:"MLX wired-memory limit (macOS Metal only); empty keeps the default"`
}

// StageDecl is one entry of `stages:`.
type StageDecl struct {
	ID    string   `yaml:"id" required:"true" doc:"unique name of the stage, used by after: and in metrics"`
	Kind  string   `yaml:"kind" required:"true" doc:"stage kind (see yai stages)"`
	On    string   `yaml:"on" enum:"setup,before-step,step,after-step,on-eval,teardown" doc:"event the stage listens to; each kind has a default"`
	After []string `yaml:"after" doc:"ids of stages this one runs after (setup order, and order within an event)"`
	When  string   `yaml:"when" doc:"trigger expression over live figures, e.g. mlx.active > 0.7*limit"`
	Every int      `yaml:"every" min:"1" doc:"run only on steps where step % every == 0"`
	With  any      `yaml:"with" doc:"settings of the stage kind"`

	Config  any         `yaml:"-"` // pointer to the kind's typed settings, defaults applied
	Event   stage.Event `yaml:"-"` // On, or the kind's default
	Node    *yaml.Node  `yaml:"-"` // the stage's mapping, for positions
	trigger *vm.Program
}

var recipeFields = stages.FieldsOf(reflect.TypeFor[Recipe]())

// RecipeFields is the field spec of the recipe's top level (for the JSON Schema and docs).
func RecipeFields() []stages.Field { return recipeFields }

// Stage returns the declared stage with the given id.
func (r *Recipe) Stage(id string) *StageDecl {
	for i := range r.Stages {
		if r.Stages[i].ID == id {
			return &r.Stages[i]
		}
	}
	return nil
}

// Trigger describes when a stage fires, for plans and logs: "every 5 steps when mlx.active > …".
func (s *StageDecl) Trigger() string {
	out := ""
	if s.Every > 0 {
		out = "every " + itoa(s.Every) + " steps"
	}
	if s.When != "" {
		if out != "" {
			out += " and "
		}
		out += "when " + s.When
	}
	return out
}
