package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/yai-dev/yai/internal/rundir"
)

// Environment variables a launched rank reads besides MLX's own MLX_RANK and MLX_HOSTFILE.
const (
	EnvRunDir    = "YAI_RUN_DIR"     // the run directory every rank shares (rank 0 writes it)
	EnvHeartbeat = "YAI_HEARTBEAT"   // rank 0's heartbeat address, ip:port
	EnvBackend   = "YAI_MLX_BACKEND" // the MLX backend to join
)

// Launch starts the ranks of one run and watches them, as mlx.launch does for the ring
// backend: rank i runs Command with MLX_RANK=i and MLX_HOSTFILE naming the ring's hostfile,
// on its host (over ssh, in the same directory, unless the host is this machine).
type Launch struct {
	Command []string // the program and arguments every rank runs
	Ring    Ring
	Hosts   []Host   // one per rank; nil: every rank on this machine
	Envs    []string // more KEY=VALUE variables for every rank (the hostfile's "envs")
	Backend string
	RunDir  string // absolute: it means the same on every machine
	// Grace is how long the other ranks get to end by themselves once one has failed; then
	// they are killed, so a launch always ends.
	Grace  time.Duration
	Stdout io.Writer
	Stderr io.Writer
}

// Run starts every rank and waits for all. Signals the launcher receives are passed on to
// every rank. It returns how each ended and the launch's exit code: rank 0's when it ended
// by itself (the ranks agree on how a run stops), otherwise the first failure's.
func (l *Launch) Run(ctx context.Context) ([]rundir.RankExit, int, error) {
	n := len(l.Ring)
	if n == 0 || (l.Hosts != nil && len(l.Hosts) != n) {
		return nil, 1, fmt.Errorf("launch: %d hosts for %d ranks", len(l.Hosts), n)
	}
	heartbeat, err := l.heartbeatAddr()
	if err != nil {
		return nil, 1, err
	}
	hostfile, cleanup, err := l.localHostfile()
	if err != nil {
		return nil, 1, err
	}
	defer cleanup()

	cmds := make([]*exec.Cmd, n)
	exits := make([]rundir.RankExit, n)
	var outputs sync.WaitGroup
	for r := range n {
		env := append(slices.Clone(l.Envs), "MLX_RANK="+strconv.Itoa(r), EnvRunDir+"="+l.RunDir,
			EnvHeartbeat+"="+heartbeat, EnvBackend+"="+l.Backend)
		env = append(env, l.backendEnv(r)...)
		host := l.host(r)
		exits[r] = rundir.RankExit{Rank: r, Host: host}
		if IsLocal(host) {
			cmds[r] = exec.Command(l.Command[0], l.Command[1:]...)
			cmds[r].Env = append(os.Environ(), append(env, "MLX_HOSTFILE="+hostfile)...)
			cmds[r].SysProcAttr = rankProcAttr()
		} else {
			// -tt as mlx.launch: when the launcher ends the ssh session (a signal, the grace
			// period), the remote rank gets SIGHUP and stops at a step boundary
			cmds[r] = exec.Command("ssh", "-tt", "-o", "LogLevel=QUIET", host, RemoteScript(l.Ring, env, l.Command))
		}
		cmds[r].Stdout = prefixed(l.Stdout, r, &outputs)
		cmds[r].Stderr = prefixed(l.Stderr, r, &outputs)
	}
	for r, c := range cmds {
		if err := c.Start(); err != nil {
			for _, started := range cmds[:r] {
				started.Process.Kill()
				started.Wait()
			}
			return nil, 1, fmt.Errorf("launch rank %d: %w", r, err)
		}
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ended := make(chan int, n)
	for r, c := range cmds {
		go func() {
			c.Wait()
			closeOutput(c.Stdout)
			closeOutput(c.Stderr)
			ended <- r
		}()
	}
	var mu sync.Mutex // exits and the processes' states, between this loop and the timer
	done := make([]bool, n)
	var killTimer *time.Timer
	killRest := func() {
		mu.Lock()
		defer mu.Unlock()
		for r, c := range cmds {
			if !done[r] {
				exits[r].Killed = true
				c.Process.Kill()
			}
		}
	}
	armKill := func(after time.Duration) {
		if killTimer == nil {
			killTimer = time.AfterFunc(after, killRest)
		}
	}
	cancelled := ctx.Done()
	for left := n; left > 0; {
		select {
		case s := <-sigs:
			for r, c := range cmds {
				if !done[r] {
					c.Process.Signal(s)
				}
			}
		case <-cancelled:
			armKill(0)
			cancelled = nil
		case r := <-ended:
			left--
			mu.Lock()
			done[r] = true
			st := cmds[r].ProcessState
			exits[r].ExitCode = st.ExitCode()
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				exits[r].Signal = ws.Signal().String()
			}
			mu.Unlock()
			if !st.Success() {
				// the others should end by themselves (MLX and the heartbeat see the loss);
				// past the grace period they are made to
				armKill(l.Grace)
			}
		}
	}
	if killTimer != nil {
		killTimer.Stop()
	}
	outputs.Wait()
	code := ExitCode(exits)
	if l.RunDir != "" {
		if err := rundir.WriteRanks(l.RunDir, exits); err != nil {
			return exits, code, fmt.Errorf("record how the ranks ended: %w", err)
		}
	}
	return exits, code, nil
}

// ExitCode is the launch's exit code: rank 0's when it ended by itself with one (the ranks
// agree on how a run stops), else that of the first rank that failed, 128 + the signal for
// a rank a signal ended.
func ExitCode(exits []rundir.RankExit) int {
	if e := exits[0]; e.Signal == "" && !e.Killed && e.ExitCode != 0 {
		return e.ExitCode
	}
	for _, e := range exits {
		switch {
		case e.Signal != "":
			if s, ok := signalNumbers[e.Signal]; ok {
				return 128 + s
			}
			return 1
		case e.ExitCode != 0:
			return e.ExitCode
		}
	}
	return 0
}

var signalNumbers = map[string]int{
	syscall.SIGHUP.String(): 1, syscall.SIGINT.String(): 2, syscall.SIGABRT.String(): 6,
	syscall.SIGKILL.String(): 9, syscall.SIGSEGV.String(): 11, syscall.SIGTERM.String(): 15,
}

func (l *Launch) host(r int) string {
	if l.Hosts == nil {
		return "127.0.0.1"
	}
	return l.Hosts[r].SSH
}

// backendEnv is what MLX's backend needs besides MLX_RANK and MLX_HOSTFILE. The NCCL backend
// meets rank 0 at NCCL_HOST_IP:NCCL_PORT (the ring's first address, which nothing else
// listens on then), reads the group's size from MLX_WORLD_SIZE, and each rank on a machine
// takes a GPU of its own, as mlx.launch sets them.
func (l *Launch) backendEnv(r int) []string {
	if l.Backend != "nccl" {
		return nil
	}
	ip, port, _ := net.SplitHostPort(l.Ring[0][0])
	return []string{"NCCL_HOST_IP=" + ip, "NCCL_PORT=" + port, "MLX_WORLD_SIZE=" + strconv.Itoa(len(l.Ring)),
		"CUDA_VISIBLE_DEVICES=" + l.gpu(r, os.Getenv("CUDA_VISIBLE_DEVICES"))}
}

// gpu is rank r's GPU: its place among the ranks on its host, counted through visible (the
// launcher's CUDA_VISIBLE_DEVICES, for ranks on this machine) when that is set.
func (l *Launch) gpu(r int, visible string) string {
	i := 0
	for o := range r {
		if l.host(o) == l.host(r) {
			i++
		}
	}
	if visible != "" && IsLocal(l.host(r)) {
		ids := strings.Split(visible, ",")
		return strings.TrimSpace(ids[i%len(ids)])
	}
	return strconv.Itoa(i)
}

// IsLocal is mlx.launch's test: the host 127.0.0.1 runs here, anything else over ssh.
func IsLocal(host string) bool { return host == "127.0.0.1" || host == "localhost" }

// heartbeatAddr is rank 0's heartbeat address: on loopback a free port, across machines the
// port after the ring's last one, on rank 0's first address.
func (l *Launch) heartbeatAddr() (string, error) {
	first, _, err := net.SplitHostPort(l.Ring[0][0])
	if err != nil {
		return "", fmt.Errorf("launch: ring address %q: %w", l.Ring[0][0], err)
	}
	if l.Hosts == nil {
		// the ring's ports were free when asked for and are closed again: the kernel may hand
		// one out once more, and the heartbeat must not take a rank's
		taken := map[string]bool{}
		for _, addrs := range l.Ring {
			for _, a := range addrs {
				_, p, _ := net.SplitHostPort(a)
				taken[p] = true
			}
		}
		for range 100 {
			ports, err := FreeLoopbackPorts(1)
			if err != nil {
				return "", err
			}
			if p := strconv.Itoa(ports[0]); !taken[p] {
				return net.JoinHostPort(first, p), nil
			}
		}
		return "", errors.New("launch: no free port for the heartbeat beside the ring's")
	}
	last := 0
	for _, addrs := range l.Ring {
		for _, a := range addrs {
			_, p, _ := net.SplitHostPort(a)
			if v, _ := strconv.Atoi(p); v > last {
				last = v
			}
		}
	}
	return net.JoinHostPort(first, strconv.Itoa(last+1)), nil
}

// localHostfile writes the ring's hostfile for the ranks started on this machine.
func (l *Launch) localHostfile() (string, func(), error) {
	f, err := os.CreateTemp("", "yai-ring-*.json")
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	if _, err := f.Write(l.Ring.JSON()); err != nil {
		os.Remove(f.Name())
		return "", nil, err
	}
	return f.Name(), func() { os.Remove(f.Name()) }, nil
}

// RemoteScript is the shell line ssh runs for a rank on another machine, as mlx.launch
// writes it: into the same directory, the ring's hostfile in a temporary file, the
// variables exported, then the command in place of the shell.
func RemoteScript(ring Ring, env []string, command []string) string {
	wd, _ := os.Getwd()
	var b strings.Builder
	fmt.Fprintf(&b, "cd %s || exit 1; ", shellQuote(wd))
	fmt.Fprintf(&b, "fname=$(mktemp); echo %s >$fname; export MLX_HOSTFILE=$fname; ", shellQuote(string(ring.JSON())))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s; ", k, shellQuote(v))
	}
	b.WriteString("exec")
	for _, a := range command {
		b.WriteString(" " + shellQuote(a))
	}
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// prefixed passes a rank's output on line by line, marked with its rank (rank 0's is the
// run's console and passes unmarked).
func prefixed(w io.Writer, rank int, wg *sync.WaitGroup) io.Writer {
	if w == nil || rank == 0 {
		return w
	}
	pr, pw := io.Pipe()
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(w, "[rank %d] %s\n", rank, strings.TrimSuffix(sc.Text(), "\r")) // a remote tty ends lines with \r\n
		}
		io.Copy(io.Discard, pr)
	}()
	return pw
}

func closeOutput(w io.Writer) {
	if c, ok := w.(*io.PipeWriter); ok {
		c.Close()
	}
}
