package generate

import (
	"encoding/json"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/yai-dev/yai/mlx"
)

// logprobsOf is log-softmax of random logits over 64 tokens, with a few spread far apart so
// the filters have something to cut.
func logprobsOf(seed int64) []float32 {
	r := rand.New(rand.NewSource(seed))
	logits := make([]float64, 64)
	for i := range logits {
		logits[i] = r.NormFloat64() * 2
	}
	lse := 0.0
	mx := slices.Max(logits)
	for _, v := range logits {
		lse += math.Exp(v - mx)
	}
	lse = mx + math.Log(lse)
	out := make([]float32, len(logits))
	for i, v := range logits {
		out[i] = float32(v - lse)
	}
	return out
}

// kept lists the tokens a filter leaves finite.
func kept(t *testing.T, filter func(*mlx.Array) *mlx.Array, lp []float32) []int {
	t.Helper()
	var out []int
	err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		vals := filter(mlx.FromSlice(lp, 1, len(lp))).Floats()
		for i, v := range vals {
			if !math.IsInf(float64(v), -1) {
				out = append(out, i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The top-p, min-p and top-k filters keep exactly the tokens mlx-lm's filters keep.
func TestFiltersMatchMLXLM(t *testing.T) {
	cases := []struct {
		which  string
		value  float64
		filter func(*mlx.Array) *mlx.Array
	}{
		{"top_p", 0.9, func(a *mlx.Array) *mlx.Array { return topP(a, 0.9) }},
		{"top_p", 0.3, func(a *mlx.Array) *mlx.Array { return topP(a, 0.3) }},
		{"min_p", 0.05, func(a *mlx.Array) *mlx.Array { return minP(a, 0.05) }},
		{"min_p", 0.5, func(a *mlx.Array) *mlx.Array { return minP(a, 0.5) }},
		{"top_k", 5, func(a *mlx.Array) *mlx.Array { return topK(a, 5) }},
		{"top_k", 40, func(a *mlx.Array) *mlx.Array { return topK(a, 40) }},
	}
	var args []any
	for seed := int64(1); seed <= 2; seed++ {
		for _, c := range cases {
			args = append(args, []any{c.which, c.value, logprobsOf(seed)})
		}
	}
	arg, _ := json.Marshal(args)
	var want struct{ Kept [][]int }
	reference(t, &want, "filter", string(arg))
	i := 0
	for seed := int64(1); seed <= 2; seed++ {
		lp := logprobsOf(seed)
		for _, c := range cases {
			got := kept(t, c.filter, lp)
			if !slices.Equal(got, want.Kept[i]) {
				t.Errorf("%s=%v seed %d: kept %v, mlx-lm keeps %v", c.which, c.value, seed, got, want.Kept[i])
			}
			if len(got) == 0 || len(got) == len(lp) {
				t.Errorf("%s=%v seed %d: the filter kept %d of %d tokens: the case tests nothing", c.which, c.value, seed, len(got), len(lp))
			}
			i++
		}
	}
}

// Sampling with a seed repeats exactly; a different seed differs; top-k 1 is greedy; the
// draws follow softmax(logprobs / temp).
func TestSampling(t *testing.T) {
	lp := logprobsOf(3)
	draw := func(s Sampling, n int) []int32 {
		var out []int32
		err := mlx.Do(func() error {
			smp := newSampler(s)
			defer smp.free()
			for range n {
				sc := mlx.NewScope()
				out = append(out, smp.sample(mlx.FromSlice(lp, 1, len(lp))).Ints()...)
				sc.Close()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := draw(Sampling{Temp: 1, Seed: 4}, 50), draw(Sampling{Temp: 1, Seed: 4}, 50)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different draws")
	}
	if slices.Equal(a, draw(Sampling{Temp: 1, Seed: 5}, 50)) {
		t.Errorf("different seeds, same draws")
	}
	top := int32(0)
	for i, v := range lp {
		if v > lp[top] {
			top = int32(i)
		}
	}
	for _, tok := range draw(Sampling{Temp: 1, TopK: 1, Seed: 1}, 20) {
		if tok != top {
			t.Fatalf("top-k 1 drew %d, argmax is %d", tok, top)
		}
	}
	// Frequencies at temperature 2 against softmax(lp/2): 4000 draws, each of the likeliest
	// tokens within 4 standard deviations.
	const n = 4000
	counts := map[int32]int{}
	for _, tok := range draw(Sampling{Temp: 2, Seed: 6}, n) {
		counts[tok]++
	}
	z := 0.0
	for _, v := range lp {
		z += math.Exp(float64(v) / 2)
	}
	for i, v := range lp {
		p := math.Exp(float64(v)/2) / z
		if p < 0.05 {
			continue
		}
		sd := math.Sqrt(n * p * (1 - p))
		if got := float64(counts[int32(i)]); math.Abs(got-n*p) > 4*sd {
			t.Errorf("token %d drawn %v times, expected %.0f ± %.0f", i, got, n*p, sd)
		}
	}
}

func TestSamplingChecks(t *testing.T) {
	for _, s := range []Sampling{{Temp: -1}, {Temp: 1, TopP: 2}, {Temp: 1, TopK: 1000}, {Temp: 1, MinP: -0.1}, {TopK: 3}} {
		if err := s.Check(1000); err == nil {
			t.Errorf("%+v: want an error", s)
		}
	}
	if err := (Sampling{Temp: 0.7, TopP: 0.9, TopK: 40, MinP: 0.05}).Check(1000); err != nil {
		t.Error(err)
	}
}
