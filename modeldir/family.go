package modeldir

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// A Family is one architecture as mlx-lm's models/<name>.py writes it: the model_type values
// it reads, the config.json fields only it has (with mlx-lm's defaults), and its modules.
// Each family is one file, family_<name>.go, that registers itself; nothing else in yai
// tests a model_type. The forward pass reads what a family sets in Config (the block's
// variations) and in each Layer (its modules, window and rotary positions).
type Family struct {
	// Name is mlx-lm's module, which reads the model_types below.
	Name  string
	Types []string
	// Configure reads the family's own fields from config.json into c, after the fields
	// every family shares are read (with llama's defaults). It may change those defaults.
	Configure func(c *Config, raw Raw) error
	// Layer describes block i. Nil means the Llama block (LlamaLayer).
	Layer func(c *Config, i int) Layer
	// RopeKinds are the rope_scaling types the family reads beyond default, linear and
	// llama3, each with the check of its fields (nil: none needed).
	RopeKinds map[string]func(c *Config) error
	// LoRAKeys are the block modules LoRA adapts when a recipe names none: the attention's
	// queries and values. Nil means Llama's q_proj and v_proj.
	LoRAKeys []string
	// Unwrap, when set, turns config.json into the object the fields are read from: a
	// multimodal checkpoint's text model (Gemma 3's text_config).
	Unwrap func(raw Raw) (Raw, error)
	// Defaults are mlx-lm's ModelArgs defaults of fields every family reads (hidden_size,
	// …), where they have one; an absent field takes it before the fields are read.
	Defaults map[string]any
	// Drops are the prefixes of stored tensors mlx-lm's sanitize drops (a vision tower).
	Drops []string
}

// LoRAKeys are the block modules LoRA adapts when a recipe names none (Family.LoRAKeys).
func (c *Config) LoRAKeys() []string {
	if c.Family != nil && c.Family.LoRAKeys != nil {
		return slices.Clone(c.Family.LoRAKeys)
	}
	return []string{"self_attn.q_proj", "self_attn.v_proj"}
}

var families = map[string]*Family{}

// Register adds a family; model_types must be new.
func Register(f *Family) {
	for _, t := range f.Types {
		if _, dup := families[t]; dup {
			panic("modeldir: model_type " + t + " registered twice")
		}
		families[t] = f
	}
}

// SupportedTypes lists every model_type a family reads, sorted.
func SupportedTypes() []string {
	out := make([]string, 0, len(families))
	for t := range families {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// FamilyOf returns the family that reads model_type t.
func FamilyOf(t string) (*Family, error) {
	f, ok := families[t]
	if !ok {
		return nil, fmt.Errorf("unsupported model_type %q (supported: %s)", t, strings.Join(SupportedTypes(), ", "))
	}
	return f, nil
}

// Raw is config.json's top-level object, for a family's own fields.
type Raw map[string]json.RawMessage

// Has reports whether key is present and not null.
func (r Raw) Has(key string) bool {
	v, ok := r[key]
	return ok && string(v) != "null"
}

// Get decodes key into dst when present and not null; dst keeps its value (the default)
// otherwise.
func (r Raw) Get(key string, dst any) error {
	if !r.Has(key) {
		return nil
	}
	if err := json.Unmarshal(r[key], dst); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// GetAll decodes each present key of fields into its destination, stopping at the first
// error.
func (r Raw) GetAll(fields map[string]any) error {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := r.Get(k, fields[k]); err != nil {
			return err
		}
	}
	return nil
}
