package memplan

import (
	"fmt"
	"strings"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/modeldir"
)

// Budget is the pre-flight memory estimate of a recipe, per term, in bytes. It is computed
// from config.json and safetensors header sizes only, so it works on a directory of headers.
//
// Weights, LoRA parameters, gradients and optimizer state are exact counts. Activations and
// logits are a model of what MLX keeps alive during the compiled training step, in units of
// the step's tensor sizes (see the coefficients below); Cache is the transient memory MLX's
// allocator keeps for reuse after the step, which is not part of MLX's active or peak figure.
type Budget struct {
	Weights     int64 // every tensor of the safetensors headers, floating ones at the compute dtype's size
	LoRA        int64 // lora_a and lora_b, float32
	Gradients   int64 // one gradient per LoRA parameter (two with accumulation)
	Optimizer   int64 // AdamW/Adam: m and v; SGD: momentum
	Activations int64 // the blocks' backward: their kept tensors plus one block's working set
	Recomputed  int64 // with checkpointing, the recomputed block's kept tensors: they come after the loss
	Logits      int64 // the loss: logits and cross-entropy temporaries of the chunks in flight
	PrefixCache int64 // the step's prefix_cache bound (hidden states kept per batch)
	// Products multiply through dequantized weights (load-4bit matmul); their copies alive
	// at once add to Transient: one adapted block's (every adapted block's without
	// checkpointing) and the head's.
	Products    Products
	Matmul      string // load-4bit's matmul setting the products come from
	BlockCopies int64
	HeadCopy    int64
	// FrozenCopy is what a frozen block's products keep alive at once: one module's copy
	// in its product, and the next one's that MLX prepares ahead of it.
	FrozenCopy int64
	// Overshoot is the step's largest single allocation, a loss chunk's float32 logits or the
	// head's dequantized copy: how far MLX's peak can pass the limit MLX checks between
	// operations.
	Overshoot int64
	// Workspace is the scratch a matrix product allocates beside its output on this
	// device (cuBLAS's on CUDA): it adds to the step's peak and to its largest allocation.
	Workspace int64
	Cache     int64 // expected MLX buffer cache after a step (not active memory)

	// What the estimate was made from.
	Tokens         int // batch × sequence length of the widest batch
	Batch, SeqLen  int
	SeqFrom        string // where SeqLen comes from: max_seq_length, or the data's widest batch
	LossPositions  int    // positions the loss gathers (trained ones, padded to a compiled count)
	LossChunk      int    // positions a chunk of the loss covers
	Chunks         Chunks // rows per attention and feed-forward chunk (0: whole rows)
	Blocks         int    // adapted blocks
	Modules        int    // adapted modules
	GradCheckpoint bool
	ActDtype       string // dtype of hidden states (the embeddings' scales dtype)
	Optim          string
	Quantized      string // "4-bit" or "" for a plain checkpoint
	Device         Device
}

// Floor is what must be resident for training at all: weights and training state.
func (b Budget) Floor() int64 { return b.Weights + b.LoRA + b.Gradients + b.Optimizer + b.PrefixCache }

// Transient is what a step adds to the floor at its peak. MLX allocates the blocks'
// backward while the loss still runs, so the two add up; only a checkpointed block's
// recomputed tensors wait for the loss to finish.
func (b Budget) Transient() int64 {
	backward := b.Activations + b.Logits - min(b.Recomputed, b.Logits) + b.Copies() + b.Workspace
	return max(backward, b.frozenCopies()+b.Workspace)
}

// Step is what a step adds to the memory active when it begins: the gradients, and the
// transient (weights, adapters and optimizer state are already there).
func (b Budget) Step() int64 { return b.Gradients + b.Transient() }

// Copies is what the products through dequantized weights keep alive at once: the head's
// copy lives during the loss, the blocks' from their forward to their backward, so with
// checkpointing (one block recomputed after the loss) they do not meet.
func (b Budget) Copies() int64 {
	var blocks, head int64
	if b.Products.Blocks {
		blocks = b.BlockCopies
	}
	if b.Products.Head {
		head = b.HeadCopy
	}
	if b.GradCheckpoint {
		return max(blocks, head)
	}
	return blocks + head
}

// frozenCopies are the frozen blocks' copies, alive during their forward only, before
// anything of the backward or the loss exists (see Transient).
func (b Budget) frozenCopies() int64 {
	if b.Products.Frozen && !b.Products.Blocks {
		return b.FrozenCopy
	}
	return 0
}

// With is the budget of the same step with products p.
func (b Budget) With(p Products) Budget {
	b.Products = p
	return b
}

// Peak is the estimated MLX peak (active memory) during a step.
func (b Budget) Peak() int64 { return b.Floor() + b.Transient() }

// The coefficients below are in tensors of the step's sizes, measured on MLX 0.32 (CPU,
// compiled step) from the MLX peak of real training steps. The unit tensors are
//
//	TH = tokens × hidden, TKV = tokens × kv_heads × head_dim (k and v under grouped-query
//	attention), TI = tokens × intermediate, S = batch × heads × seq² (attention scores),
//	CV = one loss chunk's positions × vocab
//
// each at the activation dtype's size.
//   - The blocks (Activations): every adapted block's kept tensors (without checkpointing),
//     and the working set of the block being differentiated. Fitted on 28 configurations at
//     a small loss chunk, each varying one thing: hidden and intermediate size, heads,
//     key/value heads, sequence 128–512, batch, 1–6 adapted blocks, with and without
//     checkpointing. With checkpointing each adapted block keeps its input and what the
//     compiled checkpoint keeps beside it (4.5 TH), and one block is recomputed at a time.
//   - The loss (Logits): a lone chunk holds 3 CV (slope of the peak over vocabularies 2k–16k
//     on three shapes: exactly 3.0 each). MLX schedules work ahead of what it has computed,
//     so with several chunks the buffers of a few are alive at once: the table below, in CV
//     by number of chunks, from a sweep of chunks 32–512 over 512 and 1,024 positions.
//   - MLX allocates the blocks' backward while the loss still runs, so the two add up: the
//     peak rises by exactly the loss term over every vocabulary, without and with
//     checkpointing, except the recomputed block's tensors, which come after the loss.
//   - With half-precision activations the float32 LoRA branch adds a float32 copy of each
//     adapted module's input per block and float32 gradients of its output (see estimate):
//     derived from the promotion rule, not fitted.
//
// mlxbackend's BenchmarkBudgetSweep trains the fitting configurations and prints measured peak,
// estimate and error for each, to refit after an MLX upgrade. stages/mlxbackend/budget_test.go compares
// the estimate with the measured peak on nine configurations none of these were fitted on
// (a 135M shape among them), and TestBudgetHoldsForFamilies on each family's blocks at
// shapes the family terms below were not fitted on.
const (
	keptTH, keptKV, keptTI, keptS = 3.47, 1.33, 4.28, 1.27
	workTH, workKV, workTI, workS = 19.55, 8.6, 0.05, 1.68
	ckptTH                        = 4.46
	// Fitted on Llama and Qwen3 blocks of head_dim 32 and 64 at hidden 256 (8 heads), 2 and 4
	// adapted blocks: the extra attention width costs 10.7 TQ−TH of working set and nothing
	// kept per block; Qwen3's q/k norms keep 0.7 TQ per block.
	workWideQ, keptQKNorm = 10.7, 0.7
	// A mixture of experts' tensors of tokens × ExpertsPerToken × hidden (see estimate).
	// moeKeptTH fitted on Mixtral and Qwen3-MoE blocks (hidden 256, 8 heads, 2–4 adapted
	// blocks of 4 and 8 experts, 1 and 2 per token, expert sizes 256–1,536, batch 1–4,
	// sequence 192 and 384), with a sparse block's working set without attention's
	// scores: 0.5 (of the three the forward makes: the gathered inputs, the experts'
	// outputs and their weighted copy; frozen experts need none of them for their
	// gradient but the outputs, which the scores' gradient reads).
	moeKeptTH, moeWorkTH = 0.5, 2
	// The float32 tensors of one chunk's scores that chunked attention's backward holds at
	// once: the scores, their probabilities, the probabilities' gradient and the scores'.
	chunkScoreTensors = 4
	// Fitted on Gemma 2 and Gemma 3 blocks against Llama blocks of the same shapes (head_dim
	// 32, hidden 256, 8 heads: intermediate 768 and 1,536, sequence 192 and 384, 2 and 4
	// adapted blocks, vocabulary 3,000 and 12,000), beside the post-norms' inputs, which are
	// derived (a norm after attention or the MLP keeps its input, 1 TH, for its gradient):
	// the tanh-approximated GELU keeps 2.3 TI more per block than SiLU and works on 0.5 TI
	// more; scores capped with tanh (computed by hand, not by the fused attention) keep
	// 0.4 S more per block; capped logits keep their tanh, one more CV per loss chunk in
	// flight (measured: 0.97).
	geluKeptTI, geluWorkTI = 2.3, 0.5
	capKeptS               = 0.4
	capLossCV              = 1.0
)

// lossInFlight is the loss's memory in CV by number of chunks (1, 2, 4, 8, 16 and more),
// interpolated between; checkpointing changes how far MLX runs ahead.
var (
	lossChunks         = []float64{1, 2, 4, 8, 16}
	lossInFlight       = []float64{3.0, 5.6, 10.0, 10.0, 6.0}
	lossInFlightRecomp = []float64{3.0, 4.5, 6.3, 10.0, 6.0}
)

// lossTensors is the loss's memory in CV for chunks chunks.
func lossTensors(chunks int, checkpointed bool) float64 {
	ys := lossInFlight
	if checkpointed {
		ys = lossInFlightRecomp
	}
	k := min(float64(chunks), lossChunks[len(lossChunks)-1])
	for i := 1; i < len(lossChunks); i++ {
		if k <= lossChunks[i] {
			f := (k - lossChunks[i-1]) / (lossChunks[i] - lossChunks[i-1])
			return ys[i-1] + f*(ys[i]-ys[i-1])
		}
	}
	return ys[0]
}

// seqBucket is the widest input the step sees for max_seq_length: batches are padded to a
// multiple of 32 (at most max_seq_length), then to 1 + a multiple of 32 before the step,
// whose inputs drop the last token.
func seqBucket(maxSeq int) int { return 32 * ((maxSeq - 1 + 31) / 32) }

// autoProducts is what load-4bit's matmul: auto multiplies through dequantized weights on
// CUDA for a step of budget b: the most of the model (the blocks' projections and the head,
// else the blocks', else the frozen blocks') whose copies keep the estimated peak inside
// limit, less the margin the schedule keeps for the estimate's own error.
func autoProducts(b Budget, limit int64) Products {
	room := int64(float64(limit) * (1 - EstimateMargin))
	for _, p := range []Products{{Blocks: true, Head: true}, {Blocks: true}, {Frozen: true}} {
		if b.With(p).Peak() <= room {
			return p
		}
	}
	return Products{}
}

// estimate is the memory of one training step of workload w on the model described by
// info, set up as d decided: on its device, in its compute dtype, with its products, and
// MLX's cache capped at its cache limit (0: uncapped).
func (d Decision) estimate(info *modeldir.Info, w Workload) Budget {
	c := info.Config
	b := Budget{Batch: w.BatchSize, SeqLen: seqBucket(w.MaxSeqLength), GradCheckpoint: w.GradCheckpoint, Optim: w.Optimizer, SeqFrom: "max_seq_length",
		Device: d.Device}
	b.Tokens = b.Batch * b.SeqLen
	b.Blocks = min(w.Layers, c.NumHiddenLayers)
	if q := c.Quantization; q != nil {
		b.Quantized = fmt.Sprintf("%d-bit", q.Default.Bits)
	}
	dtype, size := d.ComputeDtype, dtypeSize(d.ComputeDtype)
	for _, t := range info.Tensors {
		b.Weights += convertedBytes(t, size)
	}

	// LoRA: (in, r) + (r, out) float32 per adapted module of each adapted block (a family
	// may mix dense blocks and mixtures of experts, so each block is counted).
	if len(w.Keys) == 0 { // attach-lora's default
		w.Keys = c.LoRAKeys()
	}
	var blocks []blockLoRA
	for i := c.NumHiddenLayers - b.Blocks; i < c.NumHiddenLayers; i++ {
		l := adaptersOf(info, i, w, b.Batch*b.SeqLen)
		blocks = append(blocks, l)
		b.LoRA += l.bytes
		b.Modules += l.modules
	}
	b.Gradients = b.LoRA
	b.PrefixCache = w.PrefixCache
	if w.Accumulation > 1 {
		b.Gradients *= 2 // the running sum beside this micro-batch's gradient
	}
	switch w.Optimizer {
	case "sgd":
		b.Optimizer = b.LoRA
	default:
		b.Optimizer = 2 * b.LoRA
	}

	b.ActDtype = dtype
	tokens := float64(b.Tokens)
	th := tokens * float64(c.HiddenSize) * size
	tkv := tokens * float64(c.NumKeyValueHeads*c.HeadDim) * size
	sc := float64(b.Batch) * float64(c.NumAttentionHeads) * float64(b.SeqLen) * float64(b.SeqLen) * size
	b.Chunks = d.Chunks
	keptScores := keptS
	if q := d.Chunks.Attention; q > 0 && q < b.SeqLen {
		// Chunked attention keeps no scores for its backward, which recomputes them a chunk
		// at a time: its working set holds one chunk's (derived: scores, probabilities and
		// their gradients, float32, where the fused attention's fitted coefficient held the
		// whole row's).
		sc = float64(b.Batch) * float64(c.NumAttentionHeads) * float64(q) * float64(b.SeqLen) * 4 * chunkScoreTensors / workS
		keptScores = 0
	}
	tq := tokens * float64(c.NumAttentionHeads*c.HeadDim) * size
	// Each adapted block's kept tensors and working set; blocks alike (every block of a
	// Llama) give n × kept exactly.
	var kept, keptAll, work float64
	same := true
	for j, l := range blocks {
		ti := tokens * float64(c.IntermediateSize) * size
		k, wk := 0.0, 0.0
		if l.sparse {
			// A mixture runs each token through ExpertsPerToken experts: its intermediate
			// tensors are tokens × k × the experts' size. Beside them it keeps the router's
			// scores and moeKeptTH rows of hidden size per token and expert (see the
			// constant), and an adapted expert stack's gathered input (lora_a's gradient
			// reads it); the backward works on moeWorkTH of those rows at a time. Its
			// backward peaks in the experts, past attention's: the working set has no
			// score tensors.
			tk := tokens * float64(c.ExpertsPerToken)
			ti = tk * float64(c.ExpertSize) * size
			router := tokens * float64(c.NumExperts) * size
			k = moeKeptTH*tk*float64(c.HiddenSize)*size + 2*router + tokens*l.expertIn*size
			wk = moeWorkTH*tk*float64(c.HiddenSize)*size + l.expertGrads - workS*sc
		}
		k += keptTH*th + keptKV*tkv + keptTI*ti + keptScores*sc
		wk += workTH*th + workKV*tkv + workTI*ti + workS*sc
		// Attention wider or narrower than the hidden size (heads × head_dim ≠ hidden:
		// Qwen3, Gemma) changes the working set of attention's backward; per-head q/k
		// norms keep their outputs.
		wk += workWideQ * (tq - th)
		if l.qkNorm {
			k += keptQKNorm * tq
		}
		// Norms after attention and the MLP (Gemma) keep their inputs; a GeGLU MLP and
		// softcapped scores keep more than SwiGLU and the fused attention.
		k += float64(l.postNorms) * th
		if c.Activation == "gelu_approx" {
			k += geluKeptTI * ti
			wk += geluWorkTI * ti
		}
		if c.AttnSoftcap > 0 && keptScores > 0 {
			k += capKeptS * sc
		}
		// A fused projection's input gradient comes from its parts' gradients concatenated:
		// one more tensor of its output width in the working set.
		wk += tokens * l.fusedOut * size
		if size < 4 {
			// Half-precision activations meet float32 LoRA weights: x @ lora_a promotes x to
			// a float32 copy per adapted module, kept for lora_a's gradient, and the branch's
			// gradient flows back in float32 (two tokens × out tensors per module at a time).
			k += tokens * l.in * 4
			wk += 2 * tokens * l.out * 4
		}
		if j > 0 && k != kept {
			same = false
		}
		kept, keptAll, work = max(kept, k), keptAll+k, max(work, wk)
	}
	n := float64(b.Blocks)
	if same {
		keptAll = n * kept
	}
	if b.GradCheckpoint {
		b.Recomputed = int64(kept)
		b.Activations = int64(n*ckptTH*th + kept + work)
	} else {
		b.Activations = int64(keptAll + work)
	}
	if w.Pack {
		// The block-diagonal mask of packed rows, batch × seq² booleans.
		b.Activations += int64(b.Batch) * int64(b.SeqLen) * int64(b.SeqLen)
	}
	// The head runs on trained positions only (padded to the count the step is compiled
	// for), loss_chunk of them at a time: the most a batch of the data trains, when it was
	// read, else every position.
	trained := b.Tokens
	if w.Targets > 0 {
		trained = min(trained, w.Targets)
	}
	b.LossPositions = data.LossPositions(trained, w.LossChunk)
	b.LossChunk = b.LossPositions
	if w.LossChunk > 0 {
		b.LossChunk = min(b.LossChunk, w.LossChunk)
	}
	chunks := (b.LossPositions + b.LossChunk - 1) / b.LossChunk
	cv := float64(b.LossChunk) * float64(c.VocabSize) * size
	loss := lossTensors(chunks, b.GradCheckpoint)
	if c.FinalSoftcap > 0 {
		// Each chunk's 3 CV hold the capped logits' tanh too (the cap's gradient).
		loss *= (3 + capLossCV) / 3
	}
	b.Logits = int64(loss * cv)
	b.Products, b.Matmul = d.Products, w.Matmul
	b.BlockCopies, b.HeadCopy, b.FrozenCopy = dequantizedCopies(info, size)
	if !b.GradCheckpoint {
		b.BlockCopies *= int64(b.Blocks)
	}
	b.Overshoot = int64(b.LossChunk) * int64(c.VocabSize) * 4
	if b.Products.Head {
		b.Overshoot = max(b.Overshoot, b.HeadCopy)
	}
	b.Workspace = b.Device.MatmulWorkspace
	b.Overshoot += b.Workspace // the product that makes it allocates its scratch too

	// After the step the transient buffers go back to MLX's cache, up to its limit.
	b.Cache = b.Transient()
	if d.CacheLimit > 0 {
		b.Cache = min(b.Cache, d.CacheLimit)
	}
	return b
}

// blockLoRA is what the adapters of one block add.
type blockLoRA struct {
	bytes   int64 // lora_a and lora_b, float32
	modules int
	// in and out sum the adapted modules' inputs and outputs per token: an experts' stack
	// counts ExpertsPerToken rows per token.
	in, out float64
	sparse  bool // the block is a mixture of experts
	qkNorm  bool // the block normalizes each head's queries and keys
	// postNorms counts the norms applied to attention's and the MLP's outputs (Gemma).
	postNorms int
	// fusedOut sums the output widths of the fused projections that are split in parts
	// (Phi-3's qkv_proj and gate_up_proj).
	fusedOut float64
	// expertGrads are the gradients of the experts' adapters as the backward forms them,
	// one per expert the step touches: ExpertsPerToken per token, at most every expert.
	expertGrads float64
	// expertIn sums, per token, the gathered inputs of the adapted expert stacks:
	// ExpertsPerToken rows of hidden size for gate and up (which share theirs), of the
	// experts' size for down.
	expertIn float64
}

// adaptersOf is what w's adapters add to block i of a step of tokens tokens. Keys name
// modules as internal/lora resolves them (MatchModules); an experts' stack gets mlx-lm's
// LoRASwitchLinear, lora_a (experts, r, in) and lora_b (experts, out, r).
func adaptersOf(info *modeldir.Info, i int, w Workload, tokens int) blockLoRA {
	var l blockLoRA
	c := info.Config
	modules := info.BlockModules(i)
	path := func(m string) string { return c.LayerPath(i) + "." + m }
	for _, m := range modules {
		if e, _, _ := info.ExpertDims(path(m)); e > 0 {
			l.sparse = true
		}
	}
	layers := c.Layout().Layers
	if i < len(layers) {
		l.qkNorm = layers[i].QNorm.Path != ""
		for _, m := range []modeldir.Module{layers[i].QKV, layers[i].GateUp} {
			if m.Path != "" {
				l.fusedOut += float64(m.Out)
			}
		}
		for _, n := range []modeldir.Module{layers[i].PostAttnNorm, layers[i].PostFFNorm} {
			if n.Path != "" {
				l.postNorms++
			}
		}
	}
	r, k := int64(w.Rank), float64(c.ExpertsPerToken)
	seen := map[string]bool{}
	gathered := map[bool]bool{} // by whether the stack is down, whose input is not gate's and up's
	for _, key := range w.Keys {
		for _, m := range modeldir.MatchModules(modules, key) {
			if seen[m] {
				continue
			}
			seen[m] = true
			l.modules++
			if e, in, out := info.ExpertDims(path(m)); e > 0 {
				l.bytes += int64(e) * r * int64(in+out) * 4
				l.in, l.out = l.in+k*float64(in), l.out+k*float64(out)
				touched := min(float64(e), float64(tokens)*k)
				l.expertGrads += touched * float64(r) * float64(in+out) * 4
				down := i < len(layers) && layers[i].ExpertDown.Path == path(m)
				if !gathered[down] {
					gathered[down] = true
					l.expertIn += k * float64(in)
				}
				continue
			}
			in, out := info.LinearDims(path(m))
			l.bytes += r * int64(in+out) * 4
			l.in, l.out = l.in+float64(in), l.out+float64(out)
		}
	}
	return l
}

// dequantizedCopies are the dequantized sizes of one block's quantized projections and of
// the head; a frozen block's copies live for one product each and stay below them. Experts'
// stacks have none: they always multiply through gather_qmm, as mlx-lm's
// QuantizedSwitchLinear does.
func dequantizedCopies(info *modeldir.Info, size float64) (block, head, frozen int64) {
	c := info.Config
	if c.Quantization == nil {
		return 0, 0, 0
	}
	dense := func(module string) int64 {
		if !info.Quantized(module) {
			return 0
		}
		in, out := info.LinearDims(module)
		return int64(float64(in) * float64(out) * size)
	}
	last := c.NumHiddenLayers - 1
	largest := int64(0)
	for _, m := range info.BlockModules(last) {
		d := dense(c.LayerPath(last) + "." + m)
		block += d
		largest = max(largest, d)
	}
	head = dense(c.Prefix + "lm_head")
	if c.TieWordEmbeddings {
		head = dense(c.Prefix + "model.embed_tokens")
	}
	return block, head, min(block, 2*largest)
}

// dtypeSize is the size in bytes of an element of a floating dtype.
func dtypeSize(dtype string) float64 {
	if dtype == "float32" {
		return 4
	}
	return 2
}

// convertedBytes is a tensor's size once loaded: floating tensors take the compute dtype's
// size, packed weights keep theirs.
func convertedBytes(t modeldir.TensorInfo, size float64) int64 {
	var from int64
	switch t.Dtype {
	case "F32":
		from = 4
	case "F16", "BF16":
		from = 2
	default:
		return t.Bytes()
	}
	return int64(float64(t.Bytes()/from) * size)
}

// Decimal byte units, as recipes write them.
const (
	megabyte = 1000 * 1000
	gigabyte = 1000 * megabyte
)

// gb prints bytes in GB with two decimals, or MB below 0.1 GB, for aligned columns.
func gb(v int64) string {
	if v < 100*megabyte {
		return fmt.Sprintf("%7.2f MB", float64(v)/float64(megabyte))
	}
	return fmt.Sprintf("%7.2f GB", float64(v)/float64(gigabyte))
}

// Describe renders the breakdown against limit, one term a line.
func (b Budget) Describe(limit int64) string {
	var w strings.Builder
	fmt.Fprintf(&w, "memory budget (limit %s):\n", strings.TrimSpace(gb(limit)))
	line := func(name string, v int64, note string) {
		fmt.Fprintf(&w, "  %-15s %s   (%s)\n", name, gb(v), note)
	}
	q := "not quantized"
	if b.Quantized != "" {
		q = b.Quantized + ", scales and biases included"
	}
	if b.ActDtype != "" {
		q += ", floating tensors as " + b.ActDtype
	}
	line("weights", b.Weights, "safetensors headers: "+q)
	line("lora params", b.LoRA, fmt.Sprintf("%d modules in %d blocks, float32", b.Modules, b.Blocks))
	line("gradients", b.Gradients, "one per LoRA parameter")
	line("optimizer", b.Optimizer, b.Optim+" state")
	ck := "no gradient checkpointing: every block's tensors kept"
	if b.GradCheckpoint {
		ck = "gradient checkpointing: block inputs kept, one block recomputed"
	}
	if b.Chunks.Attention > 0 {
		ck += fmt.Sprintf("; attention %d queries at a time", b.Chunks.Attention)
	}
	if b.Chunks.FeedForward > 0 {
		ck += fmt.Sprintf("; MLP %d rows at a time", b.Chunks.FeedForward)
	}
	line("activations", b.Activations, fmt.Sprintf("%d blocks × batch %d × seq %d (%s), %s; %s", b.Blocks, b.Batch, b.SeqLen, b.SeqFrom, b.ActDtype, ck))
	if b.PrefixCache > 0 {
		line("prefix cache", b.PrefixCache, "prefix_cache bound: hidden states at the first adapted block, per batch")
	}
	line("logits", b.Logits, fmt.Sprintf("loss over %d positions, %d at a time × vocab, the chunks MLX holds at once", b.LossPositions, b.LossChunk))
	auto := matmulAuto(b.Matmul)
	uncounted := func(why string) {
		all := b.With(Products{Blocks: true, Head: true}).Copies()
		fmt.Fprintf(&w, "  %-15s %s   (not counted: %s)\n", "dequantized", gb(all), why)
	}
	switch {
	case auto && b.Products.Head:
		line("dequantized", b.Copies(), "matmul: auto on CUDA, which the limit holds for the blocks and the head: the copies alive at once")
	case auto && b.Products.Blocks:
		line("dequantized", b.Copies(), "matmul: auto on CUDA, which the limit holds for the blocks, not the head too: the copies alive at once")
	case auto && b.Products.Frozen:
		line("dequantized", b.frozenCopies(), "matmul: auto on CUDA, which the limit holds for the frozen blocks below the adapted ones (a copy per product), not the adapted blocks' copies")
	case b.Products != (Products{}):
		line("dequantized", b.Copies(), "matmul: dequantized: the weight copies alive at once")
	case b.BlockCopies == 0 || !auto:
	case b.Device.Backend == "cuda":
		uncounted("the limit does not hold them, so matmul: auto keeps the quantized kernels")
	default:
		uncounted("matmul: auto dequantizes on CUDA alone, what the limit holds")
	}
	if b.Workspace > 0 {
		line("matmul scratch", b.Workspace, "cuBLAS workspace of the product in flight on "+b.Device.Name)
	}
	line("expected cache", b.Cache, "freed buffers MLX keeps for reuse; not active memory, returned by clear-cache")
	fmt.Fprintf(&w, "  %-15s %s   (what must be resident)\n", "floor", gb(b.Floor()))
	verdict := fmt.Sprintf("fits, %s headroom", strings.TrimSpace(gb(limit-b.Peak())))
	if b.Peak() > limit {
		verdict = fmt.Sprintf("over the limit by %s", strings.TrimSpace(gb(b.Peak()-limit)))
	}
	fmt.Fprintf(&w, "  %-15s %s   %s\n", "estimated peak", gb(b.Peak()), verdict)
	return w.String()
}

// BudgetJSON is the breakdown as `yai validate --json` prints it (bytes).
type BudgetJSON struct {
	Weights     int64 `json:"weights"`
	LoRA        int64 `json:"lora_params"`
	Gradients   int64 `json:"gradients"`
	Optimizer   int64 `json:"optimizer"`
	Activations int64 `json:"activations"`
	Logits      int64 `json:"logits"`
	Dequantized int64 `json:"dequantized_copies,omitempty"` // matmul: dequantized
	Workspace   int64 `json:"matmul_workspace,omitempty"`   // cuBLAS's, on CUDA
	Cache       int64 `json:"expected_cache"`
	Floor       int64 `json:"floor"`
	Peak        int64 `json:"estimated_peak"`
	Limit       int64 `json:"limit"`
	Fits        bool  `json:"fits"`
}

// JSON returns the breakdown against limit.
func (b Budget) JSON(limit int64) *BudgetJSON {
	return &BudgetJSON{Weights: b.Weights, LoRA: b.LoRA, Gradients: b.Gradients, Optimizer: b.Optimizer,
		Activations: b.Activations, Logits: b.Logits, Dequantized: b.Copies(), Workspace: b.Workspace, Cache: b.Cache, Floor: b.Floor(), Peak: b.Peak(),
		Limit: limit, Fits: b.Peak() <= limit}
}
