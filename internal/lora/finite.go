package lora

import (
	"fmt"
	"math"
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
