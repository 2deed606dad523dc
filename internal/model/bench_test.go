package model

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkForward times an evaluated forward pass of the quickstart model (batch 4 × 64
// tokens) in yai and, in the same run, in mlx-lm, and reports the ratio of their times
// (below 1 means yai is faster).
func BenchmarkForward(b *testing.B) {
	dir := b.TempDir()
	if err := WriteTiny(dir, TinyPresets["tiny"]); err != nil {
		b.Fatal(err)
	}
	m := mustLoad(b, dir)
	defer m.Free()
	rows := randomTokens(11, 4, 64, m.Config.VocabSize)
	forwardOnce(b, m, rows) // warm-up

	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		forwardOnce(b, m, rows)
	}
	yai := time.Since(start).Seconds() / float64(b.N)
	b.StopTimer()

	iters := max(3, min(b.N, 20))
	out := reference(b, "bench", dir, tokensArg(rows), strconv.Itoa(iters))
	mlxlm, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil {
		b.Fatalf("mlx-lm bench printed %q", out)
	}
	b.ReportMetric(yai*1e3, "yai-ms/fwd")
	b.ReportMetric(mlxlm*1e3, "mlxlm-ms/fwd")
	b.ReportMetric(yai/mlxlm, "yai/mlxlm")
	fmt.Printf("forward 4×64 tokens: yai %.1f ms, mlx-lm %.1f ms, ratio yai/mlx-lm %.2f\n", yai*1e3, mlxlm*1e3, yai/mlxlm)
}
