package lora

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// File names mlx-lm reads from an adapter directory.
const (
	WeightsFile = "adapters.safetensors"
	ConfigFile  = "adapter_config.json"
)

// fileConfig is the part of adapter_config.json that mlx_lm.tuner.utils.load_adapters reads;
// Extra fields (model, seed, …) ride along for people reading the file.
type fileConfig struct {
	FineTuneType   string         `json:"fine_tune_type"`
	NumLayers      int            `json:"num_layers"`
	LoraParameters fileParameters `json:"lora_parameters"`
	Seed           uint64         `json:"seed"`
}

type fileParameters struct {
	Rank    int      `json:"rank"`
	Scale   float64  `json:"scale"`
	Dropout float64  `json:"dropout"`
	Keys    []string `json:"keys"`
}

// Save writes adapters.safetensors and adapter_config.json into dir (created if needed).
// Each file is written to a temporary name and renamed, so a crash leaves the old file or
// the new one, never half of either. The adapter arrays must be evaluated.
func (a *Adapters) Save(dir string) error {
	tensors := make(map[string]*mlx.Array, 2*len(a.Layers))
	for i, n := range a.ParamNames() {
		tensors[n] = a.Params()[i]
	}
	return SaveFiles(dir, a.Config, tensors)
}

// SaveFiles writes adapters given by name (<module>.lora_a, <module>.lora_b, evaluated) and
// their resolved config as Save does, for adapters that come from elsewhere (an import).
func SaveFiles(dir string, c Config, tensors map[string]*mlx.Array) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := mlx.SaveSafetensors(filepath.Join(dir, WeightsFile), tensors, map[string]string{"format": "mlx"}); err != nil {
		return fmt.Errorf("lora: save adapters: %w", err)
	}
	js, err := json.MarshalIndent(fileConfig{
		FineTuneType: "lora",
		NumLayers:    c.NumLayers,
		LoraParameters: fileParameters{
			Rank: c.Rank, Scale: c.Scale, Dropout: c.Dropout, Keys: c.Keys,
		},
		Seed: c.Seed,
	}, "", "    ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ConfigFile), append(js, '\n'), 0o644)
}

// ReadConfig reads an adapter directory's adapter_config.json.
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("lora: %w", err)
	}
	var fc fileConfig
	if err := json.Unmarshal(raw, &fc); err != nil {
		return Config{}, fmt.Errorf("lora: %s: %w", path, err)
	}
	if fc.FineTuneType != "" && fc.FineTuneType != "lora" {
		return Config{}, fmt.Errorf("lora: %s: fine_tune_type %q is not supported (only lora)", path, fc.FineTuneType)
	}
	p := fc.LoraParameters
	if p.Scale == 0 {
		return Config{}, fmt.Errorf("lora: %s: lora_parameters.scale is missing", path)
	}
	return Config{Keys: p.Keys, NumLayers: fc.NumLayers, Rank: p.Rank, Scale: p.Scale, Dropout: p.Dropout, Seed: fc.Seed}, nil
}

// Load attaches adapters described by dir's adapter_config.json to blocks and fills them
// with dir's adapters.safetensors, to continue training or to run the adapted model.
func Load(blocks []*model.Block, dir string) (*Adapters, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	a, err := Attach(blocks, cfg)
	if err != nil {
		return nil, err
	}
	if err := a.LoadWeights(filepath.Join(dir, WeightsFile)); err != nil {
		a.Detach()
		return nil, err
	}
	return a, nil
}

// LoadWeights replaces the adapter arrays with those in a safetensors file. Every adapter
// must be present with its shape; other tensors are an error, as in mlx-lm.
func (a *Adapters) LoadWeights(path string) error {
	tensors, _, err := mlx.LoadSafetensors(path)
	if err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	names := a.ParamNames()
	current := a.Params()
	var problems []string
	for n, t := range tensors {
		i := slices.Index(names, n)
		switch {
		case i < 0:
			problems = append(problems, fmt.Sprintf("  %s: not an adapter parameter in the model", n))
		case !slices.Equal(t.Shape(), current[i].Shape()):
			problems = append(problems, fmt.Sprintf("  %s: adapter shape %v does not match model parameter shape %v", n, t.Shape(), current[i].Shape()))
		}
	}
	for _, n := range names {
		if _, ok := tensors[n]; !ok {
			problems = append(problems, fmt.Sprintf("  %s: missing", n))
		}
	}
	if len(problems) > 0 {
		for _, t := range tensors {
			t.Free()
		}
		slices.Sort(problems)
		return fmt.Errorf("lora: %s has incompatible tensors:\n%s", path, strings.Join(problems, "\n"))
	}
	ps := make([]*mlx.Array, len(names))
	for i, n := range names {
		ps[i] = tensors[n]
	}
	if err := mlx.Do(func() error { mlx.Eval(ps...); return nil }); err != nil {
		return err
	}
	if err := CheckFinite(path, names, ps); err != nil {
		for _, t := range ps {
			t.Free()
		}
		return fmt.Errorf("lora: %w", err)
	}
	a.Replace(ps)
	return nil
}
