package mlx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/internal/testenv"
)

// Ranks are this test binary started again with YAI_MLX_RANK_SCENARIO set: TestMain runs the
// scenario as one rank and exits.
func TestMain(m *testing.M) {
	if s := os.Getenv("YAI_MLX_RANK_SCENARIO"); s != "" {
		os.Exit(rankScenario(s))
	}
	os.Exit(m.Run())
}

// collectiveResults is what a rank prints after the collectives scenario.
type collectiveResults struct {
	Rank, Size int
	Sum        []float32
	Gather     []float32
	Max        []float32
	Recv       []float32 // what the left neighbour sent
}

// rankInput is rank r's contribution: arange(6)*(r+1) - r, shape (2, 3).
func rankInput(r int) []float32 {
	x := make([]float32, 6)
	for i := range x {
		x[i] = float32(i*(r+1) - r)
	}
	return x
}

func rankScenario(name string) int {
	g, err := InitDistributed(os.Getenv("YAI_MLX_BACKEND"), name != "single")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer g.Free()
	var out any
	err = Do(func() error {
		s := NewScope()
		defer s.Close()
		x := FromSlice(rankInput(g.Rank()), 2, 3)
		switch name {
		case "collectives", "single":
			sum, gather, mx := AllSum(x, g), AllGather(x, g), AllMax(x, g)
			Eval(sum, gather, mx)
			res := collectiveResults{g.Rank(), g.Size(), sum.Floats(), gather.Floats(), mx.Floats(), nil}
			if g.Size() > 1 {
				// around the ring: a small message fits the socket's buffer, so every rank
				// can send before any receives
				Eval(Send(x, (g.Rank()+1)%g.Size(), g))
				res.Recv = RecvLike(x, (g.Rank()+g.Size()-1)%g.Size(), g).Floats()
			}
			out = res
		case "lost":
			Eval(AllSum(x, g))
			if g.Rank() == 1 {
				os.Exit(0) // leaves without a word: its sockets close under the others
			}
			time.Sleep(200 * time.Millisecond)
			Eval(AllSum(x, g))
			out = "second all_sum returned"
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return 0
}

// pythonRank is the same collectives scenario in Python mlx, a rank written by MLX's authors.
const pythonRank = `
import json, mlx.core as mx
g = mx.distributed.init(strict=True, backend="ring")
r = g.rank()
x = (mx.arange(6) * (r + 1) - r).astype(mx.float32).reshape(2, 3)
s, ga, m = mx.distributed.all_sum(x), mx.distributed.all_gather(x), mx.distributed.all_max(x)
mx.eval(s, ga, m)
n = g.size()
mx.eval(mx.distributed.send(x, (r + 1) % n))
got = mx.distributed.recv_like(x, (r + n - 1) % n)
print(json.dumps({"Rank": r, "Size": n, "Sum": s.reshape(-1).tolist(),
                  "Gather": ga.reshape(-1).tolist(), "Max": m.reshape(-1).tolist(),
                  "Recv": got.reshape(-1).tolist()}))
`

type rankProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func startRank(t *testing.T, ctx context.Context, argv []string, env ...string) *rankProc {
	t.Helper()
	p := &rankProc{cmd: exec.CommandContext(ctx, argv[0], argv[1:]...)}
	p.cmd.Env = withEnv(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// withEnv sets each "K=V" of env in base; "K=" removes K, since MLX treats a set but empty
// MLX_HOSTFILE as a hostfile to parse.
func withEnv(base []string, env ...string) []string {
	out := slices.Clone(base)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		out = slices.DeleteFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		if v != "" {
			out = append(out, kv)
		}
	}
	return out
}

func TestDistributedRingMatchesPythonRank(t *testing.T) {
	if !DistributedAvailable("ring") {
		t.Fatal("this libmlx has no ring backend")
	}
	py := testenv.Python(t)
	script := filepath.Join(t.TempDir(), "rank.py")
	if err := os.WriteFile(script, []byte(pythonRank), 0o644); err != nil {
		t.Fatal(err)
	}
	hostfile := testenv.LoopbackHostfile(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Go, Python, Go: the binding speaks MLX's own protocol, so the ranks interoperate.
	argvs := [][]string{{os.Args[0]}, {py, script}, {os.Args[0]}}
	procs := make([]*rankProc, len(argvs))
	for r, argv := range argvs {
		procs[r] = startRank(t, ctx, argv, fmt.Sprintf("MLX_RANK=%d", r), "MLX_HOSTFILE="+hostfile,
			"YAI_MLX_RANK_SCENARIO=collectives", "YAI_MLX_BACKEND=ring")
	}
	want := collectiveResults{Size: 3}
	for i := range 6 {
		var sum, mx float32 = 0, -1e9
		for r := range 3 {
			v := rankInput(r)[i]
			sum += v
			mx = max(mx, v)
		}
		want.Sum = append(want.Sum, sum)
		want.Max = append(want.Max, mx)
	}
	for r := range 3 {
		want.Gather = append(want.Gather, rankInput(r)...)
	}
	for r, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("rank %d: %v\n%s", r, err, p.stderr.String())
		}
		var got collectiveResults
		if err := json.Unmarshal(p.stdout.Bytes(), &got); err != nil {
			t.Fatalf("rank %d printed %q: %v", r, p.stdout.String(), err)
		}
		want.Rank = r
		want.Recv = rankInput((r + 2) % 3)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("rank %d (-want +got):\n%s", r, d)
		}
	}
}

func TestDistributedLostPeerIsAnError(t *testing.T) {
	hostfile := testenv.LoopbackHostfile(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	procs := make([]*rankProc, 2)
	for r := range procs {
		procs[r] = startRank(t, ctx, []string{os.Args[0]}, fmt.Sprintf("MLX_RANK=%d", r), "MLX_HOSTFILE="+hostfile,
			"YAI_MLX_RANK_SCENARIO=lost", "YAI_MLX_BACKEND=ring")
	}
	if err := procs[1].cmd.Wait(); err != nil {
		t.Fatalf("rank 1: %v\n%s", err, procs[1].stderr.String())
	}
	err := procs[0].cmd.Wait()
	if ctx.Err() != nil {
		t.Fatal("rank 0 hung after its peer left")
	}
	if err == nil || !strings.Contains(procs[0].stderr.String(), "connection to a peer was lost") {
		t.Fatalf("rank 0: err %v, stderr %q, stdout %q", err, procs[0].stderr.String(), procs[0].stdout.String())
	}
	if !strings.Contains(procs[0].stderr.String(), "all_sum") && !strings.Contains(procs[0].stderr.String(), "eval") {
		t.Errorf("the error does not name the op: %q", procs[0].stderr.String())
	}
}

func TestDistributedWithoutBackendIsAGroupOfOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startRank(t, ctx, []string{os.Args[0]}, "YAI_MLX_RANK_SCENARIO=single", "YAI_MLX_BACKEND=any", "MLX_RANK=", "MLX_HOSTFILE=")
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("%v\n%s", err, p.stderr.String())
	}
	var got collectiveResults
	if err := json.Unmarshal(p.stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	x := rankInput(0)
	want := collectiveResults{Rank: 0, Size: 1, Sum: x, Gather: x, Max: x}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
