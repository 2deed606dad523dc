package model

import (
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/yai-dev/yai/modeldir"

	"github.com/yai-dev/yai/mlx"
)

// TinySpec describes a small random model for tests and the quickstart.
type TinySpec struct {
	Config Config
	Seed   uint64
	// Dtype of the float tensors (norms, scales and biases, plain weights).
	Dtype mlx.Dtype
	// Quant packs every linear layer and the embeddings; nil writes a plain checkpoint.
	Quant *mlx.Quantization
	// LayerQuant overrides Quant per layer path (a nil value leaves that layer plain); the
	// overrides are written to config.json as mlx-lm writes them.
	LayerQuant map[string]*mlx.Quantization
	// Extra are config.json fields of the family beyond Config's (see TinyConfigJSON).
	Extra map[string]any
	// ShardBytes splits the weights into files of about this size with an index, as mlx-lm's
	// save_model does; 0 writes one model.safetensors.
	ShardBytes int
}

// TinyVocabSize is the size of the byte-level tokenizer shipped with tiny models.
const TinyVocabSize = 1000

// TinyPresets are the named specs of `yai-tinymodel -preset`. "tiny" is the quickstart model:
// small enough to train visibly in about a minute on two CPU cores. Its scales are float32
// because MLX's CPU quantized matmul is several times slower with bfloat16 or float16
// scales (the tests cover those dtypes with other specs).
var TinyPresets = map[string]TinySpec{
	"tiny": {
		Config: Config{ModelType: "llama", HiddenSize: 128, NumHiddenLayers: 4, IntermediateSize: 256,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize, HeadDim: 32,
			RMSNormEps: 1e-5, RopeTheta: 500000, MaxPositionEmbeddings: 2048,
			RopeScaling: &RopeScaling{RopeType: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 1024}},
		Seed: 1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
	},
	// "llama-3.1-8b" has the published shape of Llama-3.1-8B-Instruct as mlx-community ships
	// it 4-bit (group 64, bfloat16 scales and biases, llama3 RoPE scaling), with random values
	// and the tiny tokenizer: for measuring memory and speed at full size where no weights can
	// be downloaded. It needs about 4.5 GB on disk and a GPU to generate in reasonable time.
	"llama-3.1-8b": {
		Config: Config{ModelType: "llama", HiddenSize: 4096, NumHiddenLayers: 32, IntermediateSize: 14336,
			NumAttentionHeads: 32, NumKeyValueHeads: 8, VocabSize: 128256, HeadDim: 128,
			RMSNormEps: 1e-5, RopeTheta: 500000, MaxPositionEmbeddings: 131072,
			RopeScaling: &RopeScaling{RopeType: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}},
		Seed: 1, Dtype: mlx.BFloat16, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
		ShardBytes: 2 << 30,
	},
	// The published shape of SmolLM2-135M (mlx-community ships it 4-bit, group 64, with
	// float16 scales), random weights, for benchmarks at a real model's size.
	"smollm2-135m": {
		Config: Config{ModelType: "llama", HiddenSize: 576, NumHiddenLayers: 30, IntermediateSize: 1536,
			NumAttentionHeads: 9, NumKeyValueHeads: 3, VocabSize: 49152, HeadDim: 64,
			RMSNormEps: 1e-5, RopeTheta: 100000, MaxPositionEmbeddings: 8192, TieWordEmbeddings: true},
		Seed: 1, Dtype: mlx.Float16, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
	},
	"micro": {
		Config: Config{ModelType: "llama", HiddenSize: 64, NumHiddenLayers: 2, IntermediateSize: 128,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize, HeadDim: 16,
			RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 512, TieWordEmbeddings: true},
		Seed: 1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: "affine"},
	},
	// Qwen3-8B's published shape (Qwen/Qwen3-8B config.json), 4-bit group 64 with bfloat16
	// scales as mlx-community's Qwen3-8B-4bit: for GPU runs at full size.
	"qwen3-8b": {
		Config: Config{ModelType: "qwen3", HiddenSize: 4096, NumHiddenLayers: 36, IntermediateSize: 12288,
			NumAttentionHeads: 32, NumKeyValueHeads: 8, VocabSize: 151936, HeadDim: 128,
			RMSNormEps: 1e-6, RopeTheta: 1000000, MaxPositionEmbeddings: 40960},
		Extra: map[string]any{"architectures": []string{"Qwen3ForCausalLM"}},
		Seed:  1, Dtype: mlx.BFloat16, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
		ShardBytes: 2 << 30,
	},
	// Mixtral-8x7B's published shape (mistralai/Mixtral-8x7B-v0.1 config.json), 4-bit group
	// 64 with bfloat16 scales: about 26 GB.
	"mixtral-8x7b": {
		Config: Config{ModelType: "mixtral", HiddenSize: 4096, NumHiddenLayers: 32, IntermediateSize: 14336,
			NumAttentionHeads: 32, NumKeyValueHeads: 8, VocabSize: 32000,
			RMSNormEps: 1e-5, RopeTheta: 1000000, MaxPositionEmbeddings: 32768},
		Extra: map[string]any{"architectures": []string{"MixtralForCausalLM"}, "num_local_experts": 8, "num_experts_per_tok": 2},
		Seed:  1, Dtype: mlx.BFloat16, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
		ShardBytes: 2 << 30,
	},
	// Qwen3-30B-A3B's published shape (Qwen/Qwen3-30B-A3B config.json: 128 experts, 8 per
	// token, every block sparse), 4-bit group 64 with bfloat16 scales: about 17 GB.
	"qwen3-30b-a3b": {
		Config: Config{ModelType: "qwen3_moe", HiddenSize: 2048, NumHiddenLayers: 48, IntermediateSize: 6144,
			NumAttentionHeads: 32, NumKeyValueHeads: 4, VocabSize: 151936, HeadDim: 128,
			RMSNormEps: 1e-6, RopeTheta: 1000000, MaxPositionEmbeddings: 40960},
		Extra: map[string]any{"architectures": []string{"Qwen3MoeForCausalLM"}, "num_experts": 128, "num_experts_per_tok": 8,
			"moe_intermediate_size": 768, "decoder_sparse_step": 1, "mlp_only_layers": []int{}, "norm_topk_prob": true},
		Seed: 1, Dtype: mlx.BFloat16, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
		ShardBytes: 2 << 30,
	},
	// Phi-4-mini's published shape (microsoft/Phi-4-mini-instruct config.json: fused
	// projections, 96 of 128 head dimensions rotated, tied embeddings), 4-bit group 64 with
	// bfloat16 scales, about 2.2 GB. Its longrope factors are left out (no scaling): the
	// preset measures memory and speed, for which they change nothing.
	"phi-4-mini": {
		Config: Config{ModelType: "phi3", HiddenSize: 3072, NumHiddenLayers: 32, IntermediateSize: 8192,
			NumAttentionHeads: 24, NumKeyValueHeads: 8, VocabSize: 200064,
			RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 131072, TieWordEmbeddings: true},
		Extra: map[string]any{"architectures": []string{"Phi3ForCausalLM"}, "partial_rotary_factor": 0.75,
			"original_max_position_embeddings": 4096},
		Seed: 1, Dtype: mlx.BFloat16, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
	},
	// Gemma-2-2B's published shape (google/gemma-2-2b config.json: head_dim 256 wider than
	// hidden_size / heads, softcapped attention and logits), 4-bit group 64 with bfloat16
	// scales: about 1.5 GB.
	"gemma-2-2b": {
		Config: Config{ModelType: "gemma2", HiddenSize: 2304, NumHiddenLayers: 26, IntermediateSize: 9216,
			NumAttentionHeads: 8, NumKeyValueHeads: 4, VocabSize: 256000, HeadDim: 256,
			RMSNormEps: 1e-6, RopeTheta: 10000, MaxPositionEmbeddings: 8192, TieWordEmbeddings: true},
		Extra: map[string]any{"architectures": []string{"Gemma2ForCausalLM"}, "query_pre_attn_scalar": 256,
			"attn_logit_softcapping": json.Number("50.0"), "final_logit_softcapping": json.Number("30.0"), "sliding_window": 4096},
		Seed: 1, Dtype: mlx.BFloat16, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
	},
	// Gemma-3-1B's published shape (google/gemma-3-1b-it config.json: one key-value head,
	// five sliding-window layers of 512 to each global one), 4-bit group 64, bfloat16 scales.
	"gemma-3-1b": {
		Config: Config{ModelType: "gemma3_text", HiddenSize: 1152, NumHiddenLayers: 26, IntermediateSize: 6912,
			NumAttentionHeads: 4, NumKeyValueHeads: 1, VocabSize: 262144, HeadDim: 256,
			RMSNormEps: 1e-6, RopeTheta: 1000000, MaxPositionEmbeddings: 32768, TieWordEmbeddings: true},
		Extra: map[string]any{"architectures": []string{"Gemma3ForCausalLM"}, "query_pre_attn_scalar": 256,
			"sliding_window": 512, "sliding_window_pattern": 6, "rope_local_base_freq": json.Number("10000.0")},
		Seed: 1, Dtype: mlx.BFloat16, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
	},
	// Gemma-3-4B's text model (google/gemma-3-4b-it text_config, linear RoPE scaling by 8 on
	// the global layers), without its vision tower, 4-bit group 64, bfloat16 scales: about
	// 2.5 GB.
	"gemma-3-4b": {
		Config: Config{ModelType: "gemma3_text", HiddenSize: 2560, NumHiddenLayers: 34, IntermediateSize: 10240,
			NumAttentionHeads: 8, NumKeyValueHeads: 4, VocabSize: 262208, HeadDim: 256,
			RMSNormEps: 1e-6, RopeTheta: 1000000, MaxPositionEmbeddings: 131072, TieWordEmbeddings: true,
			RopeScaling: &RopeScaling{RopeType: "linear", Factor: 8}},
		Extra: map[string]any{"architectures": []string{"Gemma3ForCausalLM"}, "query_pre_attn_scalar": 256,
			"sliding_window": 1024, "sliding_window_pattern": 6, "rope_local_base_freq": json.Number("10000.0")},
		Seed: 1, Dtype: mlx.BFloat16, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"},
		ShardBytes: 2 << 30,
	},
	// One small model per family: micro's size with the family's own fields, for the
	// cross-checks of every command against mlx-lm (internal/testmodel.Families).
	"tiny-qwen2": {
		Config: Config{ModelType: "qwen2", HiddenSize: 64, NumHiddenLayers: 2, IntermediateSize: 128,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize,
			RMSNormEps: 1e-6, RopeTheta: 1000000, MaxPositionEmbeddings: 512, TieWordEmbeddings: true},
		Extra: map[string]any{"architectures": []string{"Qwen2ForCausalLM"}},
		Seed:  1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: "affine"},
	},
	// Four experts, two per token; the router is quantized like every linear, as mlx-lm's
	// convert does for mixtral.py.
	"tiny-mixtral": {
		Config: Config{ModelType: "mixtral", HiddenSize: 64, NumHiddenLayers: 2, IntermediateSize: 64,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize,
			RMSNormEps: 1e-5, RopeTheta: 1000000, MaxPositionEmbeddings: 512},
		Extra: map[string]any{"architectures": []string{"MixtralForCausalLM"}, "num_local_experts": 4, "num_experts_per_tok": 2},
		Seed:  1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: "affine"},
	},
	// Block 0 dense (mlp_only_layers), block 1 a mixture of four experts, two per token.
	"tiny-qwen3-moe": {
		Config: Config{ModelType: "qwen3_moe", HiddenSize: 64, NumHiddenLayers: 2, IntermediateSize: 128,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize, HeadDim: 32,
			RMSNormEps: 1e-6, RopeTheta: 1000000, MaxPositionEmbeddings: 512},
		Extra: map[string]any{"architectures": []string{"Qwen3MoeForCausalLM"}, "num_experts": 4, "num_experts_per_tok": 2,
			"moe_intermediate_size": 32, "decoder_sparse_step": 1, "mlp_only_layers": []int{0}, "norm_topk_prob": true},
		Seed: 1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: "affine"},
	},
	// Partial rotary dimensions (12 of 16) and longrope scaling, as Phi-4-mini has them;
	// the long factors apply past 8 positions.
	"tiny-phi3": {
		Config: Config{ModelType: "phi3", HiddenSize: 64, NumHiddenLayers: 2, IntermediateSize: 128,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize,
			RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 1024, TieWordEmbeddings: true},
		Extra: map[string]any{"architectures": []string{"Phi3ForCausalLM"}, "partial_rotary_factor": 0.75,
			"original_max_position_embeddings": 8, "rope_scaling": map[string]any{"type": "longrope",
				"long_factor": []float64{1, 1.5, 2, 3, 4, 6}, "short_factor": []float64{1, 1, 1, 1, 1, 1}}},
		Seed: 1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: "affine"},
	},
	// Float fields are json.Numbers written as floats, as transformers checks their types.
	// Small caps, so that they bend the scores and logits of a random model.
	"tiny-gemma2": {
		Config: Config{ModelType: "gemma2", HiddenSize: 64, NumHiddenLayers: 2, IntermediateSize: 128,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize, HeadDim: 16,
			RMSNormEps: 1e-6, RopeTheta: 10000, MaxPositionEmbeddings: 512, TieWordEmbeddings: true},
		Extra: map[string]any{"architectures": []string{"Gemma2ForCausalLM"}, "query_pre_attn_scalar": 16,
			"attn_logit_softcapping": json.Number("1.5"), "final_logit_softcapping": json.Number("2.0")},
		Seed: 1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: "affine"},
	},
	// Blocks 0 and 1 attend to windows of 8 positions, block 2 to all: the tests' rows are
	// longer than the window, and decoding goes through mlx-lm's rotating cache.
	"tiny-gemma3": {
		Config: Config{ModelType: "gemma3_text", HiddenSize: 64, NumHiddenLayers: 3, IntermediateSize: 128,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize, HeadDim: 16,
			RMSNormEps: 1e-6, RopeTheta: 1000000, MaxPositionEmbeddings: 512, TieWordEmbeddings: true},
		Extra: map[string]any{"architectures": []string{"Gemma3ForCausalLM"}, "query_pre_attn_scalar": 16,
			"sliding_window": 8, "sliding_window_pattern": 3, "rope_local_base_freq": json.Number("10000.0")},
		Seed: 1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: "affine"},
	},
	// A multimodal Gemma 3 checkpoint as mlx-lm's gemma3 reads it: tiny-gemma3's text model
	// in text_config, its modules under language_model.
	"tiny-gemma3-multimodal": {
		Config: Config{ModelType: "gemma3", HiddenSize: 64, NumHiddenLayers: 3, IntermediateSize: 128,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize, HeadDim: 16,
			RMSNormEps: 1e-6, RopeTheta: 1000000, MaxPositionEmbeddings: 512, TieWordEmbeddings: true},
		Extra: map[string]any{"architectures": []string{"Gemma3ForConditionalGeneration"}, "text_config": map[string]any{
			"model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 3, "intermediate_size": 128,
			"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-6,
			"rope_theta": json.Number("1000000.0"), "max_position_embeddings": 512, "query_pre_attn_scalar": 16,
			"sliding_window": 8, "sliding_window_pattern": 3, "rope_local_base_freq": json.Number("10000.0")}},
		Seed: 1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: "affine"},
	},
	// head_dim 32 is not hidden_size / heads, as in the real Qwen3 models.
	"tiny-qwen3": {
		Config: Config{ModelType: "qwen3", HiddenSize: 64, NumHiddenLayers: 2, IntermediateSize: 128,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: TinyVocabSize, HeadDim: 32,
			RMSNormEps: 1e-6, RopeTheta: 1000000, MaxPositionEmbeddings: 512},
		Extra: map[string]any{"architectures": []string{"Qwen3ForCausalLM"}},
		Seed:  1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: "affine"},
	},
}

//go:embed tinytokenizer/tokenizer.json tinytokenizer/tokenizer_config.json
var tinyTokenizer embed.FS

// WriteTiny writes a random model in mlx-community layout into dir: config.json, the
// weights (quantized with mlx.Quantize when spec.Quant is set), and a byte-level BPE
// tokenizer with Llama-3 special tokens and chat template. The tensors are those of the
// family's layout as config.json describes it, so any family yai reads can be written. The
// same spec and seed always give the same files.
func WriteTiny(dir string, spec TinySpec) error {
	if spec.Dtype == 0 {
		spec.Dtype = mlx.BFloat16
	}
	cfg, err := TinyConfigJSON(spec)
	if err != nil {
		return err
	}
	// The layout comes from config.json as the loader reads it, family fields included.
	parsed, err := ParseConfig(cfg)
	if err != nil {
		return fmt.Errorf("tiny model config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tensors := map[string]*mlx.Array{}
	defer func() {
		for _, a := range tensors {
			a.Free()
		}
	}()
	err = mlx.Do(func() error {
		for name, a := range tinyTensors(parsed.Layout(), spec) {
			tensors[name] = a
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := writeShards(dir, tensors, spec.ShardBytes); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		return err
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := tinyTokenizer.ReadFile("tinytokenizer/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tinyTensors draws the weights of every module of the layout: normal(0, 0.02) matrices as
// Hugging Face initialises Llama, norms near one, small biases. Each tensor has its own key,
// split from the seed in layout order (matrices, then norms, then biases), so the values do
// not depend on map order. Matrices are quantized as configured.
func tinyTensors(layout *modeldir.Layout, spec TinySpec) map[string]*mlx.Array {
	var matrices, norms, biases []modeldir.Module
	for _, m := range layout.Modules() {
		if m.Kind == modeldir.NormModule {
			norms = append(norms, m)
			continue
		}
		matrices = append(matrices, m)
		if m.Bias {
			biases = append(biases, m)
		}
	}

	out := map[string]*mlx.Array{}
	scope := mlx.NewScope()
	defer scope.Close()
	keep := func(name string, a *mlx.Array) {
		mlx.Eval(a)
		mlx.Detach(a)
		out[name] = a
	}
	keys := mlx.RandomSplit(mlx.RandomKey(spec.Seed), len(matrices)+len(norms)+len(biases))
	key := func(i int) *mlx.Array { return mlx.Squeeze(mlx.SliceAxis(keys, 0, i, i+1), 0) }
	for i, m := range matrices {
		shape := []int{m.Out, m.In}
		if m.Experts > 0 {
			shape = []int{m.Experts, m.Out, m.In} // a SwitchLinear's stacked experts
		}
		w := mlx.AsType(mlx.Normal(key(i), shape, mlx.Float32, 0, 0.02), spec.Dtype)
		qs := spec.Quant
		if o, ok := spec.LayerQuant[m.Path]; ok {
			qs = o
		}
		if qs == nil {
			keep(m.Path+".weight", w)
			continue
		}
		wq, scales, qbiases := mlx.Quantize(w, *qs)
		keep(m.Path+".weight", wq)
		keep(m.Path+".scales", scales)
		if qbiases != nil {
			keep(m.Path+".biases", qbiases)
		}
	}
	for j, m := range norms {
		n := mlx.Normal(key(len(matrices)+j), []int{m.Out}, mlx.Float32, 1, 0.1)
		keep(m.Path+".weight", mlx.AsType(n, spec.Dtype))
	}
	for j, m := range biases {
		shape := []int{m.Out}
		if m.Experts > 0 {
			shape = []int{m.Experts, m.Out}
		}
		b := mlx.Normal(key(len(matrices)+len(norms)+j), shape, mlx.Float32, 0, 0.02)
		keep(m.Path+".bias", mlx.AsType(b, spec.Dtype))
	}
	return out
}

// writeShards saves the tensors as model.safetensors, or, above shardBytes, as
// model-0000i-of-0000n.safetensors plus model.safetensors.index.json the way mlx-lm's
// save_model lays them out.
func writeShards(dir string, tensors map[string]*mlx.Array, shardBytes int) error {
	names := make([]string, 0, len(tensors))
	total := 0
	for n, a := range tensors {
		names = append(names, n)
		total += a.Nbytes()
	}
	sort.Strings(names)
	var shards []map[string]*mlx.Array
	size := 0
	for _, n := range names {
		a := tensors[n]
		if len(shards) == 0 || (shardBytes > 0 && size+a.Nbytes() > shardBytes) {
			shards = append(shards, map[string]*mlx.Array{})
			size = 0
		}
		shards[len(shards)-1][n] = a
		size += a.Nbytes()
	}
	meta := map[string]string{"format": "mlx"}
	if len(shards) == 1 {
		return saveReadable(filepath.Join(dir, "model.safetensors"), shards[0], meta)
	}
	weightMap := map[string]string{}
	for i, shard := range shards {
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		if err := saveReadable(filepath.Join(dir, file), shard, meta); err != nil {
			return err
		}
		for n := range shard {
			weightMap[n] = file
		}
	}
	index := map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}
	data, err := json.MarshalIndent(index, "", "    ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, indexFile), data, 0o644)
}

// TinyConfigJSON is the config.json WriteTiny writes for spec: the keys mlx-lm and
// transformers read, then the family's own fields from spec.Extra (which may replace any of
// them, architectures and hidden_act included).
func TinyConfigJSON(spec TinySpec) ([]byte, error) {
	c := spec.Config
	if c.HeadDim == 0 {
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	dt := spec.Dtype
	if dt == 0 {
		dt = mlx.BFloat16
	}
	if spec.Quant != nil {
		layers := map[string]*modeldir.Quant{}
		for k, v := range spec.LayerQuant {
			if v != nil {
				q := modeldir.Quant(*v)
				layers[k] = &q
			} else {
				layers[k] = nil
			}
		}
		c.Quantization = &Quantization{Default: modeldir.Quant(*spec.Quant), Layers: layers}
	}
	cfg := map[string]any{
		"architectures":           []string{"LlamaForCausalLM"},
		"model_type":              c.ModelType,
		"hidden_size":             c.HiddenSize,
		"num_hidden_layers":       c.NumHiddenLayers,
		"intermediate_size":       c.IntermediateSize,
		"num_attention_heads":     c.NumAttentionHeads,
		"num_key_value_heads":     c.NumKeyValueHeads,
		"head_dim":                c.HeadDim,
		"vocab_size":              c.VocabSize,
		"rms_norm_eps":            c.RMSNormEps,
		"rope_theta":              c.RopeTheta,
		"max_position_embeddings": c.MaxPositionEmbeddings,
		"tie_word_embeddings":     c.TieWordEmbeddings,
		"attention_bias":          c.AttentionBias,
		"mlp_bias":                c.MLPBias,
		"hidden_act":              "silu",
		"bos_token_id":            0,
		"eos_token_id":            []int{1, 8, 9},
		"torch_dtype":             dt.String(),
	}
	if c.RopeScaling != nil {
		cfg["rope_scaling"] = c.RopeScaling
	}
	if c.Quantization != nil {
		cfg["quantization"] = c.Quantization
		cfg["quantization_config"] = c.Quantization
	}
	for k, v := range spec.Extra {
		cfg[k] = v
	}
	return json.MarshalIndent(cfg, "", "    ")
}

// saveReadable saves a safetensors file readable by everyone, like the other files of a
// model directory (the atomic save creates it private).
func saveReadable(path string, tensors map[string]*mlx.Array, meta map[string]string) error {
	if err := mlx.SaveSafetensors(path, tensors, meta); err != nil {
		return err
	}
	return os.Chmod(path, 0o644)
}
