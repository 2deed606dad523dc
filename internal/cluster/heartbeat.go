package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Heartbeat links every rank to rank 0 over one TCP connection beside MLX's own. MLX's ring
// backend notices a peer whose sockets close, but waits forever on a peer that stops without
// closing them (a stopped process, a machine cut off). Heartbeats run on their own goroutines,
// so a rank busy in a long step still beats; a rank that falls silent for the timeout, or
// whose connection drops without a goodbye, is lost, and every rank learns why.
//
// The wire is lines: "rank N" to introduce a spoke, then "beat", "bye" (a normal end),
// "fail REASON" (a rank ending with an error) and, from rank 0, "lost REASON" (relayed).
type Heartbeat struct {
	rank, world int
	timeout     time.Duration
	onLost      func(error)

	mu       sync.Mutex
	peers    map[int]*peer
	listener net.Listener
	lostOnce sync.Once
	closed   chan struct{}
}

type peer struct {
	mu   sync.Mutex // one line at a time: beats and messages come from several goroutines
	rank int
	conn net.Conn
	w    *bufio.Writer
	done bool // said bye or fail: its silence is expected
}

// PeerLost is why a rank gave up on the others.
type PeerLost struct{ Reason string }

func (e *PeerLost) Error() string { return e.Reason }

// StartHeartbeat joins the heartbeat at addr: rank 0 listens there, every other rank dials it.
// onLost is called once, on its own goroutine, when a peer is lost.
func StartHeartbeat(addr string, rank, world int, timeout time.Duration, onLost func(error)) (*Heartbeat, error) {
	h := &Heartbeat{rank: rank, world: world, timeout: timeout, onLost: onLost,
		peers: map[int]*peer{}, closed: make(chan struct{})}
	if rank == 0 {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("heartbeat: %w", err)
		}
		h.listener = l
		go h.accept()
	} else {
		conn, err := dialUntil(addr, timeout)
		if err != nil {
			return nil, fmt.Errorf("heartbeat: rank 0 at %s: %w", addr, err)
		}
		p := h.add(0, conn)
		p.send("rank " + strconv.Itoa(rank))
		go h.read(p, conn)
	}
	go h.beat()
	return h, nil
}

func dialUntil(addr string, timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil || time.Now().After(deadline) {
			return conn, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *Heartbeat) add(rank int, conn net.Conn) *peer {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &peer{rank: rank, conn: conn, w: bufio.NewWriter(conn)}
	h.peers[rank] = p
	return p
}

// send writes one line; callers hold no lock (send takes the heartbeat's).
func (p *peer) send(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conn.SetWriteDeadline(time.Now().Add(time.Second))
	p.w.WriteString(line + "\n")
	p.w.Flush()
}

func (h *Heartbeat) accept() {
	deadline := time.AfterFunc(h.timeout, func() {
		h.mu.Lock()
		var missing []string
		for r := 1; r < h.world; r++ {
			if h.peers[r] == nil {
				missing = append(missing, strconv.Itoa(r))
			}
		}
		h.mu.Unlock()
		if len(missing) > 0 {
			h.lost(fmt.Sprintf("rank %s never joined the heartbeat within %s", strings.Join(missing, ", "), h.timeout))
		}
	})
	defer deadline.Stop()
	for joined := 1; joined < h.world; {
		conn, err := h.listener.Accept()
		if err != nil {
			return // closed
		}
		conn.SetReadDeadline(time.Now().Add(h.timeout))
		in := bufio.NewReader(conn)
		line, err := in.ReadString('\n')
		r, perr := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "rank "))
		if err != nil || perr != nil || r <= 0 || r >= h.world {
			conn.Close()
			continue
		}
		go h.read(h.add(r, conn), in) // in may hold lines read past the introduction
		joined++
	}
}

// read follows one peer's lines until its connection ends.
func (h *Heartbeat) read(p *peer, in io.Reader) {
	sc := bufio.NewScanner(in)
	for {
		p.conn.SetReadDeadline(time.Now().Add(h.timeout))
		if !sc.Scan() {
			break
		}
		line := sc.Text()
		switch {
		case line == "bye":
			h.setDone(p)
		case strings.HasPrefix(line, "fail "):
			h.setDone(p)
			h.lost(fmt.Sprintf("rank %d failed: %s", p.rank, strings.TrimPrefix(line, "fail ")))
		case strings.HasPrefix(line, "lost "):
			h.lost(strings.TrimPrefix(line, "lost "))
		}
	}
	select {
	case <-h.closed:
		return
	default:
	}
	h.mu.Lock()
	done := p.done
	h.mu.Unlock()
	if done {
		return
	}
	var ne net.Error
	if errors.As(sc.Err(), &ne) && ne.Timeout() {
		h.lost(fmt.Sprintf("rank %d sent no heartbeat for %s: it is stopped, hung or cut off", p.rank, h.timeout))
		return
	}
	h.lost(fmt.Sprintf("rank %d closed its connection without a goodbye: the process ended (killed or crashed)", p.rank))
}

func (h *Heartbeat) setDone(p *peer) {
	h.mu.Lock()
	p.done = true
	h.mu.Unlock()
}

// beat sends a heartbeat to every peer, several times per timeout.
func (h *Heartbeat) beat() {
	t := time.NewTicker(min(time.Second, h.timeout/4))
	defer t.Stop()
	for {
		select {
		case <-h.closed:
			return
		case <-t.C:
			h.broadcast("beat")
		}
	}
}

func (h *Heartbeat) broadcast(line string) {
	h.mu.Lock()
	peers := make([]*peer, 0, len(h.peers))
	for _, p := range h.peers {
		peers = append(peers, p)
	}
	h.mu.Unlock()
	for _, p := range peers {
		p.send(line)
	}
}

// lost reports the first loss, and rank 0 relays it to the others so that ranks far from the
// lost one in the ring learn of it too.
func (h *Heartbeat) lost(reason string) {
	h.lostOnce.Do(func() {
		if h.rank == 0 {
			h.broadcast("lost " + reason)
		}
		go h.onLost(&PeerLost{Reason: reason})
	})
}

// Fail tells the other ranks this one is ending with an error, then leaves.
func (h *Heartbeat) Fail(reason string) {
	h.broadcast("fail " + strings.ReplaceAll(reason, "\n", "; "))
	h.stop()
}

// Close says goodbye: this rank ended normally.
func (h *Heartbeat) Close() {
	h.broadcast("bye")
	h.stop()
}

func (h *Heartbeat) stop() {
	select {
	case <-h.closed:
		return
	default:
	}
	close(h.closed)
	if h.listener != nil {
		h.listener.Close()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.peers {
		p.conn.Close()
	}
}
