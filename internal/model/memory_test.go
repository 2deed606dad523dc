package model

import (
	"testing"

	"github.com/yai-dev/yai/mlx"
)

func activeMemory() uint64 {
	var active uint64
	mlx.Do(func() error { active = mlx.Memory().Active; return nil })
	return active
}

// forwardOnce runs one evaluated forward pass inside a scope, as a training or eval loop does.
func forwardOnce(t testing.TB, m *Model, rows [][]int32) {
	err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		mlx.Eval(m.Forward(tokenArray(rows)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestForwardLoopKeepsMemoryFlatAndFreeReleasesModel(t *testing.T) {
	dir := writeMicro(t, 0)
	liveBefore, activeBefore := mlx.LiveArrays(), activeMemory()

	m := mustLoad(t, dir)
	weights := uint64(m.Nbytes())
	if grown := activeMemory() - activeBefore; grown < weights {
		t.Errorf("loading grew active memory by %d bytes, less than the %d bytes of weights: not evaluated?", grown, weights)
	}
	rows := randomTokens(3, 2, 33, m.Config.VocabSize)
	for range 3 { // warm-up
		forwardOnce(t, m, rows)
	}
	live, active := mlx.LiveArrays(), activeMemory()
	for i := range 20 {
		forwardOnce(t, m, rows)
		if l, a := mlx.LiveArrays(), activeMemory(); l != live || a != active {
			t.Fatalf("step %d: live arrays %d → %d, active memory %d → %d", i, live, l, active, a)
		}
	}

	m.Free()
	m.Free() // idempotent
	if l := mlx.LiveArrays(); l != liveBefore {
		t.Errorf("after Free %d arrays are live, %d before Load", l, liveBefore)
	}
	if a := activeMemory(); a > activeBefore {
		t.Errorf("after Free active memory is %d bytes, %d before Load", a, activeBefore)
	}
}
