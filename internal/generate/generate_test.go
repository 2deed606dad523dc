package generate

import (
	"fmt"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/mlx"
)

// Greedy decoding gives exactly mlx_lm's tokens on each family of testmodel.Families and on
// the quickstart's model (4 untied blocks with llama3 RoPE), with adapters on the family's
// keys and, in the long tier, without. The prompt is long enough that the cache grows past
// its first 256-position block during generation.
func TestGreedyMatchesMLXLM(t *testing.T) {
	rows := append([]testmodel.Family{{Name: "quickstart", Preset: "tiny", Keys: testmodel.AdapterKeys}}, testmodel.Families...)
	for _, f := range rows {
		t.Run(f.Name, func(t *testing.T) {
			dir := tinyModel(t, f.Preset)
			adapter := f.Adapter(t, dir, 11, 0.3)
			prompt := randomPrompt(3, 230, 1000)
			const maxTokens = 48
			base := yaiGreedy(t, dir, "", prompt, maxTokens, testenv.Long())
			got := yaiGreedy(t, dir, adapter, prompt, maxTokens, true)
			if slices.Equal(got, base) {
				t.Errorf("the adapter did not change the output: the comparison proves nothing")
			}
		})
	}
}

// yaiGreedy generates greedily with yai and, when compare is set, checks the tokens and
// stats against mlx_lm's.
func yaiGreedy(t *testing.T, dir, adapter string, prompt []int32, maxTokens int, compare bool) []int32 {
	t.Helper()
	l := mustLoad(t, dir, adapter)
	defer l.Free()
	got, st := collect(t, l, prompt, maxTokens)
	if !compare {
		return got
	}
	var want referenceRun
	refAdapter := "-"
	if adapter != "" {
		refAdapter = adapter
	}
	reference(t, &want, "generate", dir, refAdapter, idsArg(prompt), fmt.Sprint(maxTokens))
	if !slices.Equal(got, want.Tokens) {
		t.Fatalf("tokens differ from mlx_lm (adapter %v):\n yai    %v\n mlx_lm %v", adapter != "", got, want.Tokens)
	}
	if st.PromptTokens != len(prompt) || st.GenerationTokens != len(got) || st.PromptTPS <= 0 || st.GenerationTPS <= 0 || st.PeakMemory == 0 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("%d tokens equal mlx_lm's (%s, adapter %v): %v", len(got), st.FinishReason, adapter != "", got)
	return got
}

// A stop token ends generation and is not emitted; max tokens bounds it otherwise.
func TestStopsAtStopToken(t *testing.T) {
	l := mustLoad(t, tinyModel(t, "micro"), "")
	defer l.Free()
	prompt := randomPrompt(5, 20, 1000)
	free, st := collect(t, l, prompt, 12)
	if len(free) != 12 || st.FinishReason != "length" {
		t.Fatalf("want 12 tokens ending by length, got %d (%s)", len(free), st.FinishReason)
	}
	var got []int32
	st, err := Generate(l.Model, prompt, Options{MaxTokens: 12, Stop: []int32{free[4]}},
		func(tok int32) error { got = append(got, tok); return nil })
	if err != nil {
		t.Fatal(err)
	}
	cut := slices.Index(free, free[4])
	if !slices.Equal(got, free[:cut]) || st.FinishReason != "stop" {
		t.Errorf("with stop token %d: got %v (%s), want %v", free[4], got, st.FinishReason, free[:cut])
	}
}

// Generation holds memory flat: across 700 tokens the live array handles never change, and
// MLX's active memory changes only by the cache's own 256-position blocks; greedy and with
// every sampling filter on.
func TestGenerationMemoryFlat(t *testing.T) {
	l := mustLoad(t, tinyModel(t, "tiny"), "")
	defer l.Free()
	for _, smp := range []Sampling{{}, {Temp: 0.8, TopP: 0.9, TopK: 50, MinP: 0.02, Seed: 3}} {
		t.Run(fmt.Sprintf("temp=%v", smp.Temp), func(t *testing.T) { memoryFlat(t, l, smp) })
	}
}

func memoryFlat(t *testing.T, l *Loaded, smp Sampling) {
	c := l.Model.Config
	prompt := randomPrompt(9, 16, 1000)
	const n = 700
	// Both caches of each layer: 2 · layers · kv heads · head dim · 4 bytes per position.
	perPosition := 2 * c.NumHiddenLayers * c.NumKeyValueHeads * c.HeadDim * 4
	var live []int64
	var rest []int64 // active memory less the cache's capacity
	_, err := Generate(l.Model, prompt, Options{MaxTokens: n, Sampling: smp}, func(tok int32) error {
		mlx.Synchronize() // let the step in flight finish, so the figure is deterministic
		pos := len(prompt) + len(live) + 1
		capacity := (pos + model.CacheStep - 1) / model.CacheStep * model.CacheStep
		live = append(live, mlx.LiveArrays())
		rest = append(rest, int64(mlx.Memory().Active)-int64(capacity*perPosition))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != n {
		t.Fatalf("generated %d tokens, want %d", len(live), n)
	}
	for i := 1; i < n; i++ {
		if live[i] != live[1] {
			t.Fatalf("live arrays %d at token %d, %d at token 1", live[i], i, live[1])
		}
	}
	lo, hi := slices.Min(rest[2:]), slices.Max(rest[2:])
	t.Logf("live arrays %d; active memory less the cache: %d..%d bytes over %d tokens", live[1], lo, hi, n)
	if hi != lo {
		t.Errorf("active memory less the cache varies by %d bytes across %d tokens", hi-lo, n)
	}
}

// A prompt longer than PrefillStep is prefilled in chunks, the later ones attending to the
// cached positions, as mlx-lm does; the tokens still match.
func TestLongPromptPrefillMatchesMLXLM(t *testing.T) {
	dir := tinyModel(t, "micro")
	l := mustLoad(t, dir, "")
	defer l.Free()
	prompt := randomPrompt(17, PrefillStep+300, 1000)
	got, _ := collect(t, l, prompt, 8)
	var want referenceRun
	reference(t, &want, "generate", dir, "-", idsArg(prompt), "8")
	if !slices.Equal(got, want.Tokens) {
		t.Errorf("after a %d-token prompt: yai %v, mlx_lm %v", len(prompt), got, want.Tokens)
	}
}
