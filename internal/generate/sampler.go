package generate

import (
	"fmt"
	"math"

	"github.com/yai-dev/yai/mlx"
)

// Sampling chooses each next token. The zero value is greedy (argmax). With Temp > 0 the
// token is drawn from softmax(logprobs / Temp) after the filters, applied in mlx-lm's
// make_sampler order: top-p, then min-p, then top-k.
type Sampling struct {
	Temp float64
	TopP float64 // keep the smallest set of tokens whose probability reaches TopP; 0 or 1 is off
	TopK int     // keep the TopK most likely tokens; 0 is off
	MinP float64 // drop tokens less likely than MinP × the top token's probability; 0 is off
	Seed uint64
}

// Check reports settings no sampler can honour.
func (s Sampling) Check(vocab int) error {
	switch {
	case s.Temp < 0 || math.IsNaN(s.Temp):
		return fmt.Errorf("temperature must be ≥ 0, got %v", s.Temp)
	case s.TopP < 0 || s.TopP > 1:
		return fmt.Errorf("top-p must be in [0, 1], got %v", s.TopP)
	case s.MinP < 0 || s.MinP > 1:
		return fmt.Errorf("min-p must be in [0, 1], got %v", s.MinP)
	case s.TopK < 0 || (s.TopK > 0 && s.TopK >= vocab):
		return fmt.Errorf("top-k must be in (0, %d), got %d", vocab, s.TopK)
	case s.Temp == 0 && (s.TopK > 0 || s.MinP > 0 || (s.TopP > 0 && s.TopP < 1)):
		return fmt.Errorf("top-p, top-k and min-p filter a sampled distribution: give a temperature > 0 too")
	}
	return nil
}

// sampler draws tokens with its own key, split once per token, so a seed fixes the run.
type sampler struct {
	Sampling
	key *mlx.Array // owned; nil when greedy
}

func newSampler(s Sampling) *sampler {
	sm := &sampler{Sampling: s}
	if s.Temp > 0 {
		sm.key = mlx.RandomKey(s.Seed)
		mlx.Detach(sm.key)
	}
	return sm
}

// sample maps log-probabilities (B, V) to token ids (B,).
func (s *sampler) sample(logprobs *mlx.Array) *mlx.Array {
	if s.Temp == 0 {
		return mlx.Argmax(logprobs, -1, false)
	}
	lp := logprobs.Clone()
	if s.TopP > 0 && s.TopP < 1 {
		lp = replace(lp, topP(lp, s.TopP))
	}
	if s.MinP > 0 {
		lp = replace(lp, minP(lp, s.MinP))
	}
	if s.TopK > 0 {
		lp = replace(lp, topK(lp, s.TopK))
	}
	defer lp.Free()
	next, sub := mlx.SplitKey(s.key)
	defer sub.Free()
	s.key.Free()
	mlx.Detach(next)
	s.key = next
	scaled := mlx.MulScalar(lp, 1/s.Temp)
	defer scaled.Free()
	return mlx.Categorical(sub, scaled, -1)
}

func (s *sampler) free() { s.key.Free() }

func replace(old, next *mlx.Array) *mlx.Array { old.Free(); return next }

// negInf is -inf in lp's dtype, the value a filtered-out token gets.
func negInf(lp *mlx.Array) *mlx.Array { return mlx.Scalar(math.Inf(-1), lp.Dtype()) }

// topP is mlx-lm's apply_top_p: the threshold is the sorted log-probability after the
// tokens whose mass above them already reaches p.
func topP(lp *mlx.Array, p float64) *mlx.Array {
	s := mlx.NewScope()
	defer s.Close()
	sorted := mlx.Sort(lp, -1)
	probs := mlx.Exp(mlx.AsType(sorted, mlx.Float32))
	above := mlx.Cumsum(probs, -1, true, false)
	v := lp.Dim(-1)
	total := mlx.Add(mlx.SliceAxis(above, -1, 0, 1), mlx.SliceAxis(probs, -1, 0, 1))
	dropped := mlx.Sum(mlx.GreaterEqual(above, mlx.MulScalar(total, p)), true, -1)
	threshold := mlx.TakeAlongAxis(sorted, mlx.AsType(mlx.Minimum(dropped, mlx.Scalar(float64(v-1), mlx.Int32)), mlx.Int32), -1)
	return s.Keep(mlx.Where(mlx.Less(lp, threshold), negInf(lp), lp))
}

// minP is mlx-lm's apply_min_p (min_tokens_to_keep 1): drop tokens below
// log(max p) + log(minP).
func minP(lp *mlx.Array, p float64) *mlx.Array {
	s := mlx.NewScope()
	defer s.Close()
	floor := mlx.AddScalar(mlx.Max(lp, true, -1), math.Log(p))
	return s.Keep(mlx.Where(mlx.Less(lp, floor), negInf(lp), lp))
}

// topK keeps the k largest log-probabilities. mlx-lm masks by argpartition; masking below
// the k-th largest value is the same set unless several tokens tie at that value, when
// all of them stay.
func topK(lp *mlx.Array, k int) *mlx.Array {
	s := mlx.NewScope()
	defer s.Close()
	v := lp.Dim(-1)
	sorted := mlx.Sort(lp, -1)
	kth := mlx.SliceAxis(sorted, -1, v-k, v-k+1)
	return s.Keep(mlx.Where(mlx.Less(lp, kth), negInf(lp), lp))
}
