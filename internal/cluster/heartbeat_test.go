package cluster

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// heartbeats starts rank 0 and ranks 1..world-1 on a loopback port; lost[r] receives what
// rank r's onLost was told.
func heartbeats(t *testing.T, world int, timeout time.Duration) ([]*Heartbeat, []chan error) {
	t.Helper()
	ports, err := FreeLoopbackPorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	hbs := make([]*Heartbeat, world)
	lost := make([]chan error, world)
	for r := range world {
		lost[r] = make(chan error, 1)
		ch := lost[r]
		if hbs[r], err = StartHeartbeat(addr, r, world, timeout, func(err error) { ch <- err }); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, h := range hbs {
			h.stop()
		}
	})
	return hbs, lost
}

func expectLost(t *testing.T, ch chan error, within time.Duration, want string) {
	t.Helper()
	select {
	case err := <-ch:
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lost: %v, want %q", err, want)
		}
	case <-time.After(within):
		t.Errorf("no loss reported within %s (want %q)", within, want)
	}
}

func expectNone(t *testing.T, ch chan error, during time.Duration) {
	t.Helper()
	select {
	case err := <-ch:
		t.Errorf("unexpected loss: %v", err)
	case <-time.After(during):
	}
}

func TestHeartbeatGoodbyesAreNoLoss(t *testing.T) {
	hbs, lost := heartbeats(t, 3, 2*time.Second)
	time.Sleep(300 * time.Millisecond)
	hbs[2].Close()
	hbs[1].Close()
	hbs[0].Close()
	for r := range hbs {
		expectNone(t, lost[r], 600*time.Millisecond)
	}
}

func TestHeartbeatBusyRanksKeepBeating(t *testing.T) {
	// no rank sends anything itself for three timeouts: the beats alone keep them alive
	_, lost := heartbeats(t, 2, time.Second)
	for r := range lost {
		expectNone(t, lost[r], 3*time.Second)
	}
}

func TestHeartbeatNamesAVanishedRank(t *testing.T) {
	hbs, lost := heartbeats(t, 3, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	// its connection drops without a goodbye, as the kernel closes a killed process's sockets
	hbs[1].stop()
	expectLost(t, lost[0], 2*time.Second, "rank 1 closed its connection without a goodbye")
	// and rank 0 tells the rank that is not next to it
	expectLost(t, lost[2], 2*time.Second, "rank 1 closed its connection")
}

func TestHeartbeatNamesASilentRank(t *testing.T) {
	ports, _ := FreeLoopbackPorts(1)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	lost := make(chan error, 1)
	h, err := StartHeartbeat(addr, 0, 2, time.Second, func(err error) { lost <- err })
	if err != nil {
		t.Fatal(err)
	}
	defer h.stop()
	// a rank that introduces itself and then says nothing, its socket open: a stopped process
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("rank 1\n"))
	start := time.Now()
	expectLost(t, lost, 3*time.Second, "rank 1 sent no heartbeat for 1s")
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("declared lost after %s, before the timeout", took)
	}
}

func TestHeartbeatPassesOnAFailure(t *testing.T) {
	hbs, lost := heartbeats(t, 3, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	hbs[2].Fail("stage \"train\": out of memory\nmore")
	expectLost(t, lost[0], 2*time.Second, `rank 2 failed: stage "train": out of memory; more`)
	expectLost(t, lost[1], 2*time.Second, "rank 2 failed")
}

func TestHeartbeatNamesARankThatNeverJoined(t *testing.T) {
	ports, _ := FreeLoopbackPorts(1)
	lost := make(chan error, 1)
	h, err := StartHeartbeat(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), 0, 3, 500*time.Millisecond, func(err error) { lost <- err })
	if err != nil {
		t.Fatal(err)
	}
	defer h.stop()
	expectLost(t, lost, 2*time.Second, "rank 1, 2 never joined")
}
