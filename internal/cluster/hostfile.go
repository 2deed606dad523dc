// Package cluster starts and watches the ranks of a distributed run: MLX's hostfile formats,
// the launcher behind `yai run --ranks` and `--hostfile`, and the heartbeat that lets a rank
// tell a silent peer from a slow one. It needs no cgo: MLX itself runs in the ranks.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// Host is one machine of a hostfile, as mlx.launch reads it: the name to ssh into and the
// addresses the ring backend connects over.
type Host struct {
	SSH string   `json:"ssh"`
	IPs []string `json:"ips"`
}

// Hostfile is mlx.launch's hostfile: either a list of hosts or an object with "hosts",
// "backend" and "envs" (variables set on every rank).
type Hostfile struct {
	Backend string   `json:"backend"`
	Envs    []string `json:"envs"`
	Hosts   []Host   `json:"hosts"`
}

// ReadHostfile parses path in either of mlx.launch's two forms.
func ReadHostfile(path string) (*Hostfile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseHostfile(path, data)
}

// ParseHostfile parses a hostfile's bytes; name is for messages.
func ParseHostfile(name string, data []byte) (*Hostfile, error) {
	var hf Hostfile
	var list []Host
	if err := json.Unmarshal(data, &list); err == nil {
		hf.Hosts = list
	} else if err := json.Unmarshal(data, &hf); err != nil {
		return nil, fmt.Errorf("hostfile %s: %w", name, err)
	}
	if len(hf.Hosts) == 0 {
		return nil, fmt.Errorf("hostfile %s lists no hosts", name)
	}
	for i, h := range hf.Hosts {
		if h.SSH == "" {
			return nil, fmt.Errorf("hostfile %s: host %d has no \"ssh\" name", name, i)
		}
		if len(h.IPs) == 0 {
			return nil, fmt.Errorf("hostfile %s: host %d (%s) has no \"ips\": the ring backend connects over addresses, not names", name, i, h.SSH)
		}
		for _, ip := range h.IPs {
			if net.ParseIP(ip) == nil {
				return nil, fmt.Errorf("hostfile %s: host %d (%s): %q is not an IP address", name, i, h.SSH, ip)
			}
		}
	}
	return &hf, nil
}

// Ring is the ring backend's own hostfile (what MLX_HOSTFILE points at): for each rank, the
// "ip:port" addresses it listens on.
type Ring [][]string

// RingFor assigns ports as mlx.launch does: from startPort, one more for every address of
// every host in order.
func RingFor(hosts []Host, startPort int) Ring {
	port := startPort
	out := make(Ring, len(hosts))
	for i, h := range hosts {
		for _, ip := range h.IPs {
			out[i] = append(out[i], net.JoinHostPort(ip, strconv.Itoa(port)))
			port++
		}
	}
	return out
}

// LoopbackRing is a ring of n ranks on 127.0.0.1, each on a port the kernel just handed
// out (free at the time of asking, as mlx.launch's fixed ports are assumed to be).
func LoopbackRing(n int) (Ring, error) {
	if n < 1 {
		return nil, errors.New("a ring needs at least one rank")
	}
	ports, err := FreeLoopbackPorts(n)
	if err != nil {
		return nil, err
	}
	out := make(Ring, n)
	for i, port := range ports {
		out[i] = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	}
	return out, nil
}

// FreeLoopbackPorts asks the kernel for n distinct ports on 127.0.0.1 that nothing listens
// on now (all held at once while asking, so none is handed out twice).
func FreeLoopbackPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// JSON is the ring hostfile's text.
func (r Ring) JSON() []byte {
	b, _ := json.Marshal(r)
	return b
}
