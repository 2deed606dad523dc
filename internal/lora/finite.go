package lora

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/yai-dev/yai/mlx"
)

// CheckFinite refuses tensors read back from path that hold a NaN or an infinity: one
// non-finite value turns every adapter into NaN at the next update, and a fused model's
// scales with it. The error names the file and each such tensor.
func CheckFinite(path string, names []string, xs []*mlx.Array) error {
	var bad []string
	err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		for i, x := range xs {
			if x == nil || !x.Dtype().IsFloat() {
				continue
			}
			inf := mlx.Scalar(math.Inf(1), x.Dtype())
			if mlx.All(mlx.Less(mlx.Abs(x), inf), false).Item() == 0 {
				bad = append(bad, names[i])
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(bad) == 0 {
		return nil
	}
	more := ""
	if len(bad) > 5 {
		more = fmt.Sprintf(" and %d more", len(bad)-5)
		bad = bad[:5]
	}
	return fmt.Errorf("%s: tensor %s holds NaN or infinite values%s: the file is damaged or was saved from a diverged run", path, strings.Join(bad, ", "), more)
}

// ReadWeights reads the adapter file of adapterDir, as an export reads it, refusing NaN or
// infinite tensors. The caller frees the arrays.
func ReadWeights(adapterDir string) (map[string]*mlx.Array, error) {
	path := filepath.Join(adapterDir, WeightsFile)
	var tensors map[string]*mlx.Array
	err := mlx.Do(func() error {
		var err error
		tensors, _, err = mlx.LoadSafetensors(path)
		return err
	})
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(tensors))
	xs := make([]*mlx.Array, len(names))
	for i, n := range names {
		xs[i] = tensors[n]
	}
	if err := CheckFinite(path, names, xs); err != nil {
		mlx.Do(func() error { mlx.Free(xs...); return nil })
		return nil, fmt.Errorf("lora: %w", err)
	}
	return tensors, nil
}
