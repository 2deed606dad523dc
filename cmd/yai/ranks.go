package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/yai-dev/yai/internal/cluster"
	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/runtime"
	"github.com/yai-dev/yai/stages/mlxbackend"
	"golang.org/x/term"
)

// worldOf is the world --ranks or --hostfile asks for (0: neither), and the hostfile.
func worldOf(fs *flag.FlagSet, ranks int, hostfile string) (int, *cluster.Hostfile, error) {
	switch {
	case given(fs, "ranks") && hostfile != "":
		return 0, nil, errors.New("give --ranks or --hostfile, not both")
	case given(fs, "ranks"):
		if err := inRange("ranks", ranks, 1, maxLocalRanks); err != nil {
			return 0, nil, err
		}
	case hostfile != "":
		hf, err := cluster.ReadHostfile(hostfile)
		if err != nil {
			return 0, nil, err
		}
		return len(hf.Hosts), hf, nil
	}
	return ranks, nil, nil
}

// maxLocalRanks bounds --ranks: each rank is a process holding the whole model.
const maxLocalRanks = 256

// inRank reports whether this process is a rank a launch started.
func inRank() bool { return os.Getenv(cluster.EnvRunDir) != "" && os.Getenv("MLX_RANK") != "" }

// runFlags are the settings of `yai run` a launch passes on to its ranks.
type runFlags struct {
	sets      []string
	logJSON   bool
	verbose   bool
	resumeDir string
	force     bool
	recipe    []string
}

func (f runFlags) args() []string {
	args := []string{"run"}
	for _, s := range f.sets {
		args = append(args, "--set", s)
	}
	if f.logJSON {
		args = append(args, "--log-json")
	}
	if f.verbose {
		args = append(args, "--verbose")
	}
	if f.resumeDir != "" {
		abs, _ := filepath.Abs(f.resumeDir)
		args = append(args, "--resume", abs)
	}
	if f.force {
		args = append(args, "--force")
	}
	return append(args, f.recipe...)
}

// launchRanks starts the plan's ranks (on this machine, or on the hostfile's) and waits for
// them. The run directory is made here, so every rank knows it; rank 0 writes it.
func launchRanks(plan *recipe.Plan, hf *cluster.Hostfile, port int, runsDir string, flags runFlags) int {
	d := plan.Recipe.Distributed
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "yai run:", err)
		return 1
	}
	l := &cluster.Launch{
		Command: append([]string{self}, flags.args()...),
		Backend: d.Backend,
		Grace:   time.Duration(d.PeerTimeout) * time.Second,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
	}
	if hf != nil {
		if hf.Backend != "" && hf.Backend != d.Backend {
			fmt.Fprintf(os.Stderr, "yai run: the hostfile asks for the %s backend, the recipe for %s\n", hf.Backend, d.Backend)
			return 1
		}
		l.Hosts, l.Envs = hf.Hosts, hf.Envs
		l.Ring = cluster.RingFor(hf.Hosts, port)
	} else if l.Ring, err = cluster.LoopbackRing(d.Ranks); err != nil {
		fmt.Fprintln(os.Stderr, "yai run:", err)
		return 1
	}
	dir, err := rundir.New(runsDir, plan.Recipe.Name, time.Now())
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "yai run: run directory:", err)
		return 1
	}
	l.RunDir = dir
	fmt.Fprintf(os.Stderr, "starting %d ranks (%s backend)\n", d.Ranks, d.Backend)
	exits, code, err := l.Run(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "yai run:", err)
	}
	for _, e := range exits {
		switch {
		case e.Signal != "":
			fmt.Fprintf(os.Stderr, "rank %d (%s): ended by %s\n", e.Rank, e.Host, e.Signal)
		case e.ExitCode != 0:
			fmt.Fprintf(os.Stderr, "rank %d (%s): exit %d\n", e.Rank, e.Host, e.ExitCode)
		}
	}
	fmt.Fprintln(os.Stderr, "run directory:", dir)
	return code
}

// ignoreBrokenPipes makes a write to a closed socket or pipe fail with EPIPE instead of
// raising SIGPIPE. MLX's ring backend writes to its peers from threads of its own, not Go's:
// there Go's runtime does not swallow SIGPIPE (os/signal, "Go programs that use cgo"), and
// its default action kills the process, so a peer that died mid-collective took this rank
// with it, without teardown or result. Ignored process-wide, the write fails, the collective
// fails with it, and the rank ends as on any lost peer. Go's own writes to a closed stdout
// or stderr then fail with EPIPE too, which a rank whose launcher is gone shrugs off.
func ignoreBrokenPipes() { signal.Ignore(syscall.SIGPIPE) }

// runAsRank runs the plan as one rank of a launch: it joins the heartbeat and MLX's group,
// trains its share of every batch, and ends with the others.
func runAsRank(plan *recipe.Plan, resume *runtime.Resume, logJSON bool, level slog.Level) int {
	d := plan.Recipe.Distributed
	rank, _ := strconv.Atoi(os.Getenv("MLX_RANK"))
	dir := os.Getenv(cluster.EnvRunDir)
	ignoreBrokenPipes()
	timeout := time.Duration(d.PeerTimeout) * time.Second
	// record writes why the rank failed into the run directory; when even that cannot be
	// written, stderr is the only place left to say so.
	record := func(cause error) int {
		code, err := rundir.RecordRankFailure(dir, rank, cause)
		if err != nil {
			fmt.Fprintf(os.Stderr, "yai run: rank %d: %v\n", rank, err)
		}
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "yai run: rank %d: %v\n", rank, err)
		return record(err)
	}

	finished := make(chan struct{})
	lost := make(chan error, 1)
	onLost := func(err error) {
		lost <- err
		select {
		case <-finished:
		case <-time.After(timeout):
			// still running: the MLX thread waits in a collective on a peer that is gone,
			// and nothing can interrupt it but the end of the process
			os.Exit(fail(fmt.Errorf("%w (rank %d could not end its step within %s and stopped)", err, rank, timeout)))
		}
	}
	var hb *cluster.Heartbeat
	if addr := os.Getenv(cluster.EnvHeartbeat); addr != "" {
		var err error
		if hb, err = cluster.StartHeartbeat(addr, rank, d.Ranks, timeout, onLost); err != nil {
			return fail(err)
		}
	}
	backend := os.Getenv(cluster.EnvBackend)
	if backend == "" {
		backend = d.Backend
	}
	ranks, err := mlxbackend.JoinRanks(backend)
	if err == nil && (ranks.World() != d.Ranks || ranks.Rank() != rank) {
		err = fmt.Errorf("MLX's group is rank %d of %d, the launch asked for rank %d of %d", ranks.Rank(), ranks.World(), rank, d.Ranks)
		ranks.Close()
	}
	if err != nil {
		if hb != nil {
			hb.Fail(err.Error())
		}
		return fail(err)
	}
	defer ranks.Close()
	console := runtime.NewConsole(os.Stderr, rank == 0 && term.IsTerminal(int(os.Stderr.Fd())))
	ctx, stop := runtime.WithSignals(context.Background(), console)
	defer stop()
	res, err := runtime.Run(ctx, plan, runtime.RunOptions{
		Memory: mlxbackend.MLXMemory{}, Env: mlxbackend.Environment(), Resume: resume,
		Console: console, LogJSON: logJSON, Level: level, Ranks: ranks, RunDir: dir,
	})
	close(finished)
	if hb != nil {
		if err != nil {
			hb.Fail(err.Error())
		} else {
			hb.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "yai run: rank %d: %v\n", rank, err)
		// a lost peer is what makes a collective fail: name it when the heartbeat knows
		select {
		case cause := <-lost:
			return record(cause)
		case <-time.After(min(timeout, 3*time.Second)):
		}
	}
	return res.ExitCode
}
