package testenv

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// LoopbackHostfile writes a ring hostfile (MLX_HOSTFILE's format: one list of "ip:port" per
// rank) for n ranks on 127.0.0.1, each on a port the kernel just handed out, and returns its
// path.
func LoopbackHostfile(tb testing.TB, n int) string {
	tb.Helper()
	hosts := make([][]string, n)
	for i := range hosts {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		hosts[i] = []string{fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)}
		defer l.Close()
	}
	b, err := json.Marshal(hosts)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "hostfile.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}
