// Package modeldir describes a model directory from its files alone: config.json with mlx-lm's
// defaults, safetensors headers, and where a model reference (directory, Hugging Face repo id,
// alias) points. It reads no weights and imports no cgo, so the dry run builds without libmlx.
package modeldir

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Config is a model's config.json, with mlx-lm's defaults applied.
type Config struct {
	ModelType             string
	HiddenSize            int
	NumHiddenLayers       int
	IntermediateSize      int
	NumAttentionHeads     int
	NumKeyValueHeads      int
	VocabSize             int
	HeadDim               int
	RMSNormEps            float64
	RopeTheta             float64
	RopeTraditional       bool
	RopeScaling           *RopeScaling
	MaxPositionEmbeddings int
	TieWordEmbeddings     bool
	// AttentionBias gives q, k, v and o projections a bias (llama's attention_bias);
	// qwen2 has biases on q, k and v only, see QKVBias.
	AttentionBias bool
	MLPBias       bool
	// Quantization is nil for a plain checkpoint.
	Quantization *Quantization

	// Family is the architecture model_type names; the fields below are what it varies.
	Family *Family
	// NormPlusOne: RMS norms scale by 1 + weight (Gemma) instead of weight.
	NormPlusOne bool
	// Activation is the gated MLP's: "silu" (SwiGLU) or "gelu_approx" (GeGLU, tanh form).
	Activation string
	// EmbedScale multiplies the embedded tokens when nonzero (Gemma's √hidden_size).
	EmbedScale float64
	// QueryScale is attention's scale; zero means head_dim^-0.5.
	QueryScale float64
	// AttnSoftcap and FinalSoftcap cap attention scores and logits at ±cap with tanh when
	// nonzero (Gemma 2).
	AttnSoftcap, FinalSoftcap float64
	// ClipResidual clips float16 residual sums to float16's range (Gemma 3).
	ClipResidual bool
	// LocalRopeTheta, when nonzero, is the rotary base of sliding-window layers, which then
	// take no rope_scaling (Gemma 3's rope_local_base_freq).
	LocalRopeTheta float64
	// Prefix is what mlx-lm's module tree puts before every tensor's name: "" or, for a
	// text model inside a multimodal one, "language_model." (Gemma 3).
	Prefix string
	// HeadFromWeights: a stored lm_head makes the head separate, its absence tied, whatever
	// tie_word_embeddings says (Gemma 3's sanitize); see SettleHead.
	HeadFromWeights bool
	// SlidingWindow is how far back a sliding-window layer attends, and Windows each
	// layer's window (0: full attention; nil: every layer full). See Layer.Window.
	SlidingWindow int
	Windows       []int
	// A mixture of experts (Layer.Router) has NumExperts experts of ExpertSize intermediate
	// features; each token runs through the ExpertsPerToken the router scores highest.
	// Sparse[i] says whether block i has one (a family may mix dense blocks in).
	NumExperts, ExpertSize, ExpertsPerToken int
	Sparse                                  []bool
	// SoftmaxFirst turns all the router's logits into probabilities and keeps the top ones
	// (qwen3_moe, which renormalizes them to sum to one under NormTopKProb); otherwise the
	// top logits are kept and turned into probabilities (mixtral).
	SoftmaxFirst, NormTopKProb bool
	// RotaryDims is how many features of each head the rotary embedding turns: 0 for all
	// of head_dim, fewer under a partial_rotary_factor (Phi-4-mini).
	RotaryDims int
	// OriginalMaxPositionEmbeddings is the context the model was pretrained with, which
	// su/longrope scaling reads (Phi-3's top-level field).
	OriginalMaxPositionEmbeddings int
}

// Window is block i's attention window, 0 for full attention.
func (c *Config) Window(i int) int {
	if i < len(c.Windows) {
		return c.Windows[i]
	}
	return 0
}

// LayerPath is mlx-lm's name of block i: "model.layers.3" (with the Prefix).
func (c *Config) LayerPath(i int) string { return fmt.Sprintf("%smodel.layers.%d", c.Prefix, i) }

// SettleHead decides, for a family whose head is tied by its weights (HeadFromWeights),
// whether it is tied: stored reports whether the checkpoint holds a tensor.
func (c *Config) SettleHead(stored func(name string) bool) {
	if c.HeadFromWeights {
		c.TieWordEmbeddings = !stored(c.Prefix + "lm_head.weight")
	}
}

// RopeScaling is config.json's rope_scaling.
type RopeScaling struct {
	Type                          string  `json:"type,omitempty"`
	RopeType                      string  `json:"rope_type,omitempty"`
	Factor                        float64 `json:"factor,omitempty"`
	LowFreqFactor                 float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor                float64 `json:"high_freq_factor,omitempty"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings,omitempty"`
	// ShortFactor and LongFactor scale each rotary frequency (su/longrope).
	ShortFactor Factors `json:"short_factor,omitempty"`
	LongFactor  Factors `json:"long_factor,omitempty"`
}

// Factors are per-frequency factors. mlx-lm also takes a single number, which scales every
// frequency: it is kept as a one-element list.
type Factors []float64

func (f *Factors) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var one float64
	if json.Unmarshal(data, &one) == nil {
		*f = Factors{one}
		return nil
	}
	var list []float64
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	*f = list
	return nil
}

// Kind is the scaling type, "default" when unset (mlx-lm reads "type", then "rope_type").
func (r *RopeScaling) Kind() string {
	if r == nil {
		return "default"
	}
	if r.Type != "" {
		return r.Type
	}
	if r.RopeType != "" {
		return r.RopeType
	}
	return "default"
}

// Quant is how one weight matrix is packed: mode "affine" (scales and biases per group of
// GroupSize input columns, Bits bits per value). It mirrors mlx.Quantization field for field,
// so the loader converts it with a plain conversion.
type Quant struct {
	GroupSize int
	Bits      int
	Mode      string
}

// Quantization is config.json's quantization: the defaults and the per-layer entries mlx-lm
// writes for layers packed differently ({group_size, bits, mode}) or left plain (false).
type Quantization struct {
	Default Quant
	// Layers maps a layer path ("model.layers.0.mlp.down_proj") to its own settings; a nil
	// value means the layer is not quantized.
	Layers map[string]*Quant
}

// For returns the override for the layer at path, if config.json has one.
func (q *Quantization) For(path string) (settings *Quant, overridden bool) {
	if q == nil {
		return nil, false
	}
	s, ok := q.Layers[path]
	return s, ok
}

// rawConfig mirrors the config.json keys read; pointers tell "absent" from zero.
type rawConfig struct {
	ModelType             string          `json:"model_type"`
	HiddenSize            int             `json:"hidden_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	VocabSize             int             `json:"vocab_size"`
	HeadDim               *int            `json:"head_dim"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeTraditional       bool            `json:"rope_traditional"`
	RopeScaling           *RopeScaling    `json:"rope_scaling"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         bool            `json:"attention_bias"`
	MLPBias               bool            `json:"mlp_bias"`
	Quantization          json.RawMessage `json:"quantization"`
}

// ReadConfig reads dir/config.json.
func ReadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes the contents of a config.json.
func ParseConfig(data []byte) (*Config, error) {
	var all Raw
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	var modelType string
	if err := all.Get("model_type", &modelType); err != nil {
		return nil, err
	}
	family, err := FamilyOf(modelType)
	if err != nil {
		return nil, err
	}
	if family.Unwrap != nil {
		if all, err = family.Unwrap(all); err != nil {
			return nil, err
		}
		all["model_type"], _ = json.Marshal(modelType)
	}
	for k, v := range family.Defaults {
		if !all.Has(k) {
			all[k], _ = json.Marshal(v)
		}
	}
	if data, err = json.Marshal(all); err != nil {
		return nil, err
	}
	var raw rawConfig
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	c := &Config{
		ModelType:         raw.ModelType,
		HiddenSize:        raw.HiddenSize,
		NumHiddenLayers:   raw.NumHiddenLayers,
		IntermediateSize:  raw.IntermediateSize,
		NumAttentionHeads: raw.NumAttentionHeads,
		VocabSize:         raw.VocabSize,
		RopeTraditional:   raw.RopeTraditional,
		RopeScaling:       raw.RopeScaling,
		AttentionBias:     raw.AttentionBias,
		MLPBias:           raw.MLPBias,
		// llama's defaults; a family's Configure changes its own.
		RopeTheta:         10000,
		TieWordEmbeddings: true,
		Family:            family,
		Activation:        "silu",
	}
	for name, v := range map[string]int{"hidden_size": c.HiddenSize, "num_hidden_layers": c.NumHiddenLayers,
		"intermediate_size": c.IntermediateSize, "num_attention_heads": c.NumAttentionHeads, "vocab_size": c.VocabSize} {
		if v <= 0 {
			return nil, fmt.Errorf("%s must be positive, got %d", name, v)
		}
	}
	if raw.RMSNormEps == nil {
		return nil, fmt.Errorf("rms_norm_eps is missing")
	}
	c.RMSNormEps = *raw.RMSNormEps
	c.NumKeyValueHeads = c.NumAttentionHeads
	if raw.NumKeyValueHeads != nil {
		c.NumKeyValueHeads = *raw.NumKeyValueHeads
	}
	if c.NumKeyValueHeads <= 0 || c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return nil, fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	if raw.HeadDim != nil {
		c.HeadDim = *raw.HeadDim
	}
	if raw.RopeTheta != nil {
		c.RopeTheta = *raw.RopeTheta
	}
	if raw.MaxPositionEmbeddings != nil {
		c.MaxPositionEmbeddings = *raw.MaxPositionEmbeddings
	}
	if raw.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *raw.TieWordEmbeddings
	}
	if family.Configure != nil {
		if err := family.Configure(c, all); err != nil {
			return nil, err
		}
	}
	if c.HeadDim <= 0 {
		return nil, fmt.Errorf("head_dim must be positive, got %d", c.HeadDim)
	}
	if err := c.checkRopeScaling(); err != nil {
		return nil, err
	}
	if len(raw.Quantization) > 0 && string(raw.Quantization) != "null" {
		q, err := parseQuantization(raw.Quantization)
		if err != nil {
			return nil, fmt.Errorf("quantization: %w", err)
		}
		c.Quantization = q
	}
	return c, nil
}

// ropeKinds are the rope_scaling types every family reads, each with the check of its
// fields; a family adds its own (Family.RopeKinds). internal/model builds every kind
// RopeKinds lists.
var ropeKinds = map[string]func(c *Config) error{
	"default": nil,
	"linear":  positiveFactor,
	"llama3":  positiveFactor,
}

func positiveFactor(c *Config) error {
	if c.RopeScaling.Factor <= 0 {
		return fmt.Errorf("rope_scaling: %s needs a positive factor", c.RopeScaling.Kind())
	}
	return nil
}

// checkRopeScaling checks that the model's family reads its rope_scaling type, and the
// type's fields.
func (c *Config) checkRopeScaling() error {
	kind := c.RopeScaling.Kind()
	check, ok := ropeKinds[kind]
	if !ok && c.Family != nil {
		check, ok = c.Family.RopeKinds[kind]
	}
	if !ok {
		supported := slices.Collect(maps.Keys(ropeKinds))
		if c.Family != nil {
			supported = slices.AppendSeq(supported, maps.Keys(c.Family.RopeKinds))
		}
		slices.Sort(supported)
		return fmt.Errorf("unsupported rope_scaling type %q (supported: %s)", kind, strings.Join(supported, ", "))
	}
	if check == nil {
		return nil
	}
	return check(c)
}

// RopeKinds lists every rope_scaling type some family reads, sorted.
func RopeKinds() []string {
	seen := maps.Clone(ropeKinds)
	for _, f := range families {
		maps.Copy(seen, f.RopeKinds)
	}
	return slices.Sorted(maps.Keys(seen))
}

func parseQuantization(data json.RawMessage) (*Quantization, error) {
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, err
	}
	q := &Quantization{Layers: map[string]*Quant{}, Default: Quant{Mode: "affine"}}
	for key, v := range entries {
		switch key {
		case "group_size":
			if err := json.Unmarshal(v, &q.Default.GroupSize); err != nil {
				return nil, fmt.Errorf("group_size: %w", err)
			}
		case "bits":
			if err := json.Unmarshal(v, &q.Default.Bits); err != nil {
				return nil, fmt.Errorf("bits: %w", err)
			}
		case "mode":
			if err := json.Unmarshal(v, &q.Default.Mode); err != nil {
				return nil, fmt.Errorf("mode: %w", err)
			}
		default:
			layer, err := parseLayerQuantization(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			q.Layers[key] = layer
		}
	}
	return q, nil
}

// parseLayerQuantization reads a per-layer entry: false (plain), true (the defaults are
// inferred from the shapes) or {group_size, bits, mode}.
func parseLayerQuantization(v json.RawMessage) (*Quant, error) {
	var b bool
	if json.Unmarshal(v, &b) == nil {
		if b {
			return &Quant{}, nil
		}
		return nil, nil
	}
	var s struct {
		GroupSize int    `json:"group_size"`
		Bits      int    `json:"bits"`
		Mode      string `json:"mode"`
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, err
	}
	if s.Mode == "" {
		s.Mode = "affine"
	}
	return &Quant{GroupSize: s.GroupSize, Bits: s.Bits, Mode: s.Mode}, nil
}

// MarshalJSON writes the quantization block as mlx-lm does: defaults, then per-layer entries.
func (q *Quantization) MarshalJSON() ([]byte, error) {
	out := map[string]any{"group_size": q.Default.GroupSize, "bits": q.Default.Bits, "mode": quantMode(q.Default)}
	keys := make([]string, 0, len(q.Layers))
	for k := range q.Layers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if l := q.Layers[k]; l == nil {
			out[k] = false
		} else {
			out[k] = map[string]any{"group_size": l.GroupSize, "bits": l.Bits, "mode": quantMode(*l)}
		}
	}
	return json.Marshal(out)
}

func quantMode(q Quant) string {
	if q.Mode == "" {
		return "affine"
	}
	return q.Mode
}
