package model

import (
	"fmt"
	"math"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/mlx"
)

// reference runs testdata/mlxlm_reference.py with args and returns its standard output.
func reference(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.Python(t), append([]string{filepath.Join("testdata", "mlxlm_reference.py")}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mlxlm_reference.py %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// randomTokens draws a (b, l) batch of token ids below vocab.
func randomTokens(seed int64, b, l, vocab int) [][]int32 {
	r := rand.New(rand.NewSource(seed))
	rows := make([][]int32, b)
	for i := range rows {
		rows[i] = make([]int32, l)
		for j := range rows[i] {
			rows[i][j] = int32(r.Intn(vocab))
		}
	}
	return rows
}

func tokensArg(rows [][]int32) string {
	parts := make([]string, len(rows))
	for i, row := range rows {
		s := make([]string, len(row))
		for j, v := range row {
			s[j] = fmt.Sprint(v)
		}
		parts[i] = strings.Join(s, ",")
	}
	return strings.Join(parts, ";")
}

func tokenArray(rows [][]int32) *mlx.Array {
	flat := make([]int32, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		flat = append(flat, r...)
	}
	return mlx.FromSlice(flat, len(rows), len(rows[0]))
}

// logits runs m on tokens and returns the logits as float32 with their shape and dtype.
func logits(t testing.TB, m *Model, rows [][]int32) (values []float32, shape []int, dt mlx.Dtype) {
	t.Helper()
	err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		out := m.Forward(tokenArray(rows))
		values, shape, dt = out.Floats(), out.Shape(), out.Dtype()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return values, shape, dt
}

// referenceLogits asks mlx-lm for the logits of the model in dir.
func referenceLogits(t testing.TB, dir string, rows [][]int32) (values []float32, shape []int, dt mlx.Dtype) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "logits.safetensors")
	reference(t, "logits", dir, tokensArg(rows), out)
	tensors, _, err := mlx.LoadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	a := tensors["logits"]
	defer a.Free()
	return a.Floats(), a.Shape(), a.Dtype()
}

// maxAbsDiff is the largest elementwise difference, and the largest magnitude in want.
func maxAbsDiff(got, want []float32) (diff, scale float64) {
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i])-float64(want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	return diff, scale
}

func mustLoad(t testing.TB, dir string) *Model {
	t.Helper()
	m, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeTinyPreset writes the named TinyPresets model into a temporary directory.
func writeTinyPreset(tb testing.TB, preset string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := WriteTiny(dir, TinyPresets[preset]); err != nil {
		tb.Fatal(err)
	}
	return dir
}
