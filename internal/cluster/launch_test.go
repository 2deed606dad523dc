package cluster

import (
	"bytes"
	"context"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// An NCCL launch gives every rank what MLX's NCCL backend reads: rank 0's address, the
// group's size, and a GPU of its own.
func TestNCCLRanksGetTheirEnvironment(t *testing.T) {
	ring, err := LoopbackRing(2)
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	l := &Launch{
		Command: []string{"sh", "-c", `echo "rank=$MLX_RANK world=$MLX_WORLD_SIZE at=$NCCL_HOST_IP:$NCCL_PORT gpu=$CUDA_VISIBLE_DEVICES"`},
		Ring:    ring, Backend: "nccl", RunDir: t.TempDir(), Stdout: &out, Stderr: &out,
	}
	t.Setenv("CUDA_VISIBLE_DEVICES", "")
	if _, code, err := l.Run(context.Background()); err != nil || code != 0 {
		t.Fatalf("launch: exit %d, %v\n%s", code, err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	sort.Strings(lines)
	at := ring[0][0]
	if _, _, err := net.SplitHostPort(at); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"[rank 1] rank=1 world=2 at=" + at + " gpu=1",
		"rank=0 world=2 at=" + at + " gpu=0",
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("ranks' environment (-want +got):\n%s", d)
	}

	// A ring launch sets none of NCCL's variables.
	out.Reset()
	l.Backend = "ring"
	if _, code, err := l.Run(context.Background()); err != nil || code != 0 {
		t.Fatalf("ring launch: exit %d, %v", code, err)
	}
	if strings.Contains(out.String(), "world=2") || strings.Contains(out.String(), "gpu=0") {
		t.Errorf("a ring launch set NCCL's variables:\n%s", out.String())
	}
}

// Each host's ranks count their GPUs from 0, through the launcher's visible devices when
// they run on this machine.
func TestNCCLRanksShareOutEachHostsGPUs(t *testing.T) {
	l := &Launch{Backend: "nccl", Hosts: []Host{{SSH: "a"}, {SSH: "a"}, {SSH: "b"}, {SSH: "a"}}}
	var got []string
	for r := range l.Hosts {
		got = append(got, l.gpu(r, "4,5"))
	}
	if d := cmp.Diff([]string{"0", "1", "0", "2"}, got); d != "" {
		t.Errorf("remote hosts' GPUs (-want +got):\n%s", d)
	}
	local := &Launch{Backend: "nccl", Hosts: []Host{{SSH: "127.0.0.1"}, {SSH: "127.0.0.1"}, {SSH: "127.0.0.1"}}}
	got = nil
	for r := range local.Hosts {
		got = append(got, local.gpu(r, "4, 5"))
	}
	if d := cmp.Diff([]string{"4", "5", "4"}, got); d != "" {
		t.Errorf("this machine's GPUs through CUDA_VISIBLE_DEVICES (-want +got):\n%s", d)
	}
}

// lockedBuffer collects the ranks' output, written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
