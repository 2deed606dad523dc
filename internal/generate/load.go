package generate

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/tokenizer"
)

// Loaded is a model ready to generate: weights, optional adapters, tokenizer.
type Loaded struct {
	Model     *model.Model
	Adapters  *lora.Adapters // nil without --adapter
	Tokenizer *tokenizer.Tokenizer
}

// Load reads the model in modelDir and, when adapterPath is not empty, attaches the adapters
// found there (see AdapterDir).
func Load(modelDir, adapterPath string) (*Loaded, error) {
	tok, err := tokenizer.Load(modelDir)
	if err != nil {
		return nil, err
	}
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		return nil, err
	}
	l := &Loaded{Model: m, Tokenizer: tok}
	if adapterPath != "" {
		dir, err := AdapterDir(adapterPath)
		if err != nil {
			m.Free()
			return nil, err
		}
		if l.Adapters, err = lora.Load(m.Layers, dir); err != nil {
			m.Free()
			return nil, err
		}
	}
	return l, nil
}

// Free releases adapters and weights.
func (l *Loaded) Free() {
	if l.Adapters != nil {
		l.Adapters.Free()
	}
	l.Model.Free()
}

// AdapterDir finds the adapter files for path: an adapter directory (holding
// adapter_config.json), or a run directory whose adapters/ subdirectory holds them.
func AdapterDir(path string) (string, error) {
	for _, dir := range []string{path, filepath.Join(path, "adapters")} {
		if _, err := os.Stat(filepath.Join(dir, lora.ConfigFile)); err == nil {
			return dir, nil
		}
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("adapter %s: %w", path, err)
	}
	return "", fmt.Errorf("adapter %s: neither it nor %s holds %s (want an adapter directory or a run directory)",
		path, filepath.Join(path, "adapters"), lora.ConfigFile)
}
