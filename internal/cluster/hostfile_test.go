package cluster

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/yai-dev/yai/internal/testenv"
)

// mlxLaunchReading is what mlx.launch itself makes of a hostfile: its Hostfile parser and
// launch_ring's port assignment, from the pinned Python mlx.
const mlxLaunchReading = `
import json, sys, types
from mlx._distributed_utils.common import Hostfile
from mlx._distributed_utils import launch
hf = Hostfile.from_file(sys.argv[1])
captured = {}
launch._launch_with_io = lambda cls, arguments, verbose: captured.update(files=arguments[0][0][4])
args = types.SimpleNamespace(starting_port=32323, connections_per_ip=1, env=[], verbose=False, cwd=None, python=None)
launch.launch_ring(None, hf.hosts, args, ["true"])
print(json.dumps({"backend": hf.backend, "envs": hf.envs,
                  "hosts": [{"ssh": h.ssh_hostname, "ips": h.ips} for h in hf.hosts],
                  "ring": json.loads(captured["files"]["MLX_HOSTFILE"])}))
`

func TestHostfileReadAsMLXLaunchReadsIt(t *testing.T) {
	py := testenv.Python(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "read.py")
	os.WriteFile(script, []byte(mlxLaunchReading), 0o644)
	for name, src := range map[string]string{
		"object": `{"backend": "ring", "envs": ["A=1"], "hosts": [
			{"ssh": "mac1", "ips": ["10.0.0.1"]}, {"ssh": "mac2", "ips": ["10.0.0.2", "10.0.1.2"]},
			{"ssh": "mac3", "ips": ["10.0.0.3"]}]}`,
		"list": `[{"ssh": "a", "ips": ["192.168.1.10"]}, {"ssh": "b", "ips": ["192.168.1.11"]}]`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".json")
			os.WriteFile(path, []byte(src), 0o644)
			out, err := exec.Command(py, script, path).Output()
			if err != nil {
				t.Fatalf("mlx.launch's reading: %v", err)
			}
			var want struct {
				Hostfile
				Ring Ring `json:"ring"`
			}
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatal(err)
			}
			hf, err := ReadHostfile(path)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want.Hostfile, *hf, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("hostfile (-mlx.launch +yai):\n%s", d)
			}
			if d := cmp.Diff(want.Ring, RingFor(hf.Hosts, 32323)); d != "" {
				t.Errorf("ring (-mlx.launch +yai):\n%s", d)
			}
		})
	}
}

func TestHostfileErrorsSayWhat(t *testing.T) {
	for src, want := range map[string]string{
		`[]`:                                 "lists no hosts",
		`[{"ips": ["10.0.0.1"]}]`:            `no "ssh" name`,
		`[{"ssh": "mac1"}]`:                  `has no "ips"`,
		`[{"ssh": "mac1", "ips": ["mac1"]}]`: "not an IP address",
		`{"hosts": 3}`:                       "hostfile h.json",
	} {
		if _, err := ParseHostfile("h.json", []byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

func TestLoopbackRingHasDistinctLoopbackPorts(t *testing.T) {
	ring, err := LoopbackRing(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, addrs := range ring {
		if len(addrs) != 1 || !strings.HasPrefix(addrs[0], "127.0.0.1:") || seen[addrs[0]] {
			t.Fatalf("ring %v", ring)
		}
		seen[addrs[0]] = true
	}
}

func TestRemoteScriptRunsInTheSameDirectory(t *testing.T) {
	wd, _ := os.Getwd()
	got := RemoteScript(Ring{{"10.0.0.1:1"}, {"10.0.0.2:2"}}, []string{"MLX_RANK=1", "X=it's"}, []string{"/opt/yai", "run", "r.yaml"})
	for _, want := range []string{
		"cd '" + wd + "' || exit 1; ",
		`echo '[["10.0.0.1:1"],["10.0.0.2:2"]]' >$fname; export MLX_HOSTFILE=$fname; `,
		"export MLX_RANK='1'; export X='it'\\''s'; ",
		"exec '/opt/yai' 'run' 'r.yaml'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
	// and a shell reads it back as meant
	out, err := exec.Command("bash", "-c", strings.Replace(got, "exec '/opt/yai' 'run' 'r.yaml'", `echo "$X|$MLX_RANK|$(cat $MLX_HOSTFILE)"; rm $MLX_HOSTFILE`, 1)).Output()
	if err != nil || strings.TrimSpace(string(out)) != `it's|1|[["10.0.0.1:1"],["10.0.0.2:2"]]` {
		t.Errorf("bash read %q, %v", out, err)
	}
}
