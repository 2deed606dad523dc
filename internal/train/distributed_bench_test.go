package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/mlx"
)

// A rank of BenchmarkDataParallel is this test binary started again with
// YAI_TRAIN_BENCH_RANK holding its job; TestMain runs it and exits.
func TestMain(m *testing.M) {
	if job := os.Getenv("YAI_TRAIN_BENCH_RANK"); job != "" {
		os.Exit(benchRank(job))
	}
	os.Exit(m.Run())
}

type rankJob struct {
	ModelDir    string
	GlobalBatch int // rows of every global batch; each rank steps on GlobalBatch/world of them
	Warmup      int
	Steps       int
	Reduces     int // all-reduce calls timed on their own
}

// rankTimes is what a rank measured, in seconds.
type rankTimes struct {
	Step     float64 // mean wall time of a step (forward, backward, all-reduce, update)
	Reduce   float64 // mean wall time of one all-reduce of the step's gradients alone
	Exchange float64 // mean wall time of the engine's 512-byte status all_gather
	Tokens   int     // tokens of the global batches of the timed steps
	Floats   int     // floats one all-reduce sums
}

func benchRank(jobJSON string) int {
	var job rankJob
	if err := json.Unmarshal([]byte(jobJSON), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	times, err := runRankJob(job)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, _ := json.Marshal(times)
	fmt.Println(string(out))
	return 0
}

func runRankJob(job rankJob) (rankTimes, error) {
	var times rankTimes
	g, err := mlx.InitDistributed("ring", os.Getenv("MLX_HOSTFILE") != "")
	if err != nil {
		return times, err
	}
	defer g.Free()
	m, err := model.Load(job.ModelDir, model.LoadOptions{})
	if err != nil {
		return times, err
	}
	defer m.Free()
	opts := Options{Seed: 1}
	if g.Size() > 1 {
		opts.AllReduce = AllSumOver(g)
	}
	cfg := lora.Config{Keys: []string{"self_attn.q_proj"}, NumLayers: 4, Rank: 16, Scale: 2}
	tr, err := NewTrainer(m, cfg, optim.DefaultConfig(), opts)
	if err != nil {
		return times, err
	}
	defer tr.Close()
	rng := rand.New(rand.NewSource(11)) // every rank draws the same global batches
	share := job.GlobalBatch / g.Size()
	var start time.Time
	for i := range job.Warmup + job.Steps {
		global := randomBatch(rng, job.GlobalBatch, 120)
		if i == job.Warmup {
			start = time.Now()
		}
		r, err := tr.Step(rowsOf(global, g.Rank()*share, (g.Rank()+1)*share))
		if err != nil {
			return times, err
		}
		if i >= job.Warmup {
			times.Tokens += r.Tokens
		}
	}
	times.Step = time.Since(start).Seconds() / float64(job.Steps)

	// The all-reduce alone, on arrays shaped like the step's: every gradient, loss and tokens.
	err = mlx.Do(func() error {
		shapes := [][]int{{}, {}}
		times.Floats = 2
		for _, p := range tr.Adapters().Params() {
			shapes = append(shapes, p.Shape())
			times.Floats += p.Size()
		}
		reduce := AllSumOver(g)
		status := make([]uint8, 512)
		timed := func(n int, fn func()) float64 {
			t0 := time.Now()
			for range n {
				s := mlx.NewScope()
				fn()
				s.Close()
			}
			return time.Since(t0).Seconds() / float64(n)
		}
		times.Reduce = timed(job.Reduces, func() {
			xs := make([]*mlx.Array, len(shapes))
			for i, sh := range shapes {
				xs[i] = mlx.Ones(sh, mlx.Float32)
			}
			mlx.Eval(reduce(xs)...)
		})
		times.Exchange = timed(job.Reduces, func() { mlx.Eval(mlx.AllGather(mlx.FromSlice(status), g)) })
		return nil
	})
	return times, err
}

// rowsOf is rows [lo, hi) of b, at b's width (as a rank takes its share of a global batch).
func rowsOf(b Batch, lo, hi int) Batch {
	return Batch{Tokens: b.Tokens[lo*b.Cols : hi*b.Cols], Rows: hi - lo, Cols: b.Cols,
		Offsets: b.Offsets[lo:hi], Lengths: b.Lengths[lo:hi]}
}

// launchRanks runs job on world ranks over a loopback ring and returns each rank's times.
func launchRanks(b *testing.B, job rankJob, world int) []rankTimes {
	b.Helper()
	js, _ := json.Marshal(job)
	env := append(os.Environ(), "YAI_TRAIN_BENCH_RANK="+string(js))
	if world > 1 {
		env = append(env, "MLX_HOSTFILE="+testenv.LoopbackHostfile(b, world))
	}
	cmds := make([]*exec.Cmd, world)
	outs := make([]*bytes.Buffer, world)
	for r := range world {
		cmds[r] = exec.Command(os.Args[0])
		cmds[r].Env = append(slices.Clone(env), fmt.Sprintf("MLX_RANK=%d", r))
		outs[r] = &bytes.Buffer{}
		cmds[r].Stdout, cmds[r].Stderr = outs[r], outs[r]
		if err := cmds[r].Start(); err != nil {
			b.Fatal(err)
		}
	}
	times := make([]rankTimes, world)
	var failed []string
	for r, c := range cmds {
		if err := c.Wait(); err != nil {
			failed = append(failed, fmt.Sprintf("rank %d: %v\n%s", r, err, outs[r]))
			continue
		}
		lines := strings.Split(strings.TrimSpace(outs[r].String()), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &times[r]); err != nil {
			failed = append(failed, fmt.Sprintf("rank %d printed %q", r, outs[r]))
		}
	}
	if failed != nil {
		b.Fatal(strings.Join(failed, "\n"))
	}
	return times
}

// BenchmarkDataParallel compares one rank stepping on batches of B rows with two ranks on
// loopback stepping on global batches of 2B rows (B each), and times the all-reduce of a
// step's gradients on its own. Ranks run as separate processes, as `yai run --ranks` runs
// them. See the printed note for how to read the figures on a machine with few cores.
func BenchmarkDataParallel(b *testing.B) {
	modelDir, _ := makeModel(b, "float32", benchLayers, benchHidden, 0)
	job := rankJob{ModelDir: modelDir, Warmup: 3, Steps: 12, Reduces: 100}
	var one, oneDouble, two []rankTimes
	for range b.N {
		job.GlobalBatch = benchBatch
		one = launchRanks(b, job, 1)
		job.GlobalBatch = 2 * benchBatch
		oneDouble = launchRanks(b, job, 1)
		two = launchRanks(b, job, 2)
	}
	tokps := func(r rankTimes, step float64) float64 { return float64(r.Tokens) / float64(job.Steps) / step }
	stepOne, stepTwo := one[0].Step, max(two[0].Step, two[1].Step)
	reduce := max(two[0].Reduce, two[1].Reduce)
	exchange := max(two[0].Exchange, two[1].Exchange)
	b.ReportMetric(stepOne*1e3, "ms/step-1rank-B")
	b.ReportMetric(stepTwo*1e3, "ms/step-2ranks-2B")
	b.ReportMetric(oneDouble[0].Step*1e3, "ms/step-1rank-2B")
	b.ReportMetric(reduce*1e3, "ms/allreduce")
	b.ReportMetric(exchange*1e3, "ms/exchange")
	b.ReportMetric(float64(two[0].Tokens)/float64(job.Steps)/stepTwo/(float64(one[0].Tokens)/float64(job.Steps)/stepOne), "x-tokens/s-2ranks")
	cores := fmt.Sprint(runtime.NumCPU())
	fmt.Printf(`
data-parallel step, %d layers × hidden %d, LoRA rank 16 on q_proj of 4 layers, %s CPU cores:
  1 rank,  batch %d:           %7.1f ms/step  %7.0f tokens/s
  1 rank,  batch %d:           %7.1f ms/step  %7.0f tokens/s  (the same work as 2 ranks)
  2 ranks, batch %d (%d each): %7.1f ms/step  %7.0f tokens/s  (%.2f× the tokens/s of 1 rank with batch %d)
  all-reduce of one step's gradients (one all_sum, %d floats): %.3f ms (%.1f%% of the 2-rank step)
  step-boundary status exchange (512-byte all_gather):       %.3f ms
note: both ranks share this machine's cores, so 2 ranks do twice the work of 1 on the same
cores; a step of 2B rows over 2 ranks costs about what 2B rows cost one process, not what B
rows cost, unless each rank has cores (or a machine) of its own. The all-reduce crosses
loopback TCP (MLX's ring backend) once per step and is small next to the step: LoRA gradients
are small (%d KB here). On separate machines the step time of 2 ranks approaches that of
1 rank with B rows plus the all-reduce over the network. On a machine other work shares,
every figure moves with its load: compare figures of one run only.
`, benchLayers, benchHidden, cores,
		benchBatch, stepOne*1e3, tokps(one[0], stepOne),
		2*benchBatch, oneDouble[0].Step*1e3, tokps(oneDouble[0], oneDouble[0].Step),
		2*benchBatch, benchBatch, stepTwo*1e3, tokps(two[0], stepTwo), tokps(two[0], stepTwo)/tokps(one[0], stepOne), benchBatch,
		two[0].Floats, reduce*1e3, 100*reduce/stepTwo, exchange*1e3, 4*two[0].Floats/1024)
}
