package layers

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// A task that one invocation reaches twice through deps (setup:mlx under build and
// tinymodel) would run twice at once, racing itself (one `rm -rf .mlx` under the other's pip
// install): it must say `run: once` (or when_changed).
func TestSharedTasksRunOncePerInvocation(t *testing.T) {
	raw, err := os.ReadFile("../../Taskfile.yml")
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tasks map[string]struct {
			Deps []any  `yaml:"deps"`
			Run  string `yaml:"run"`
		} `yaml:"tasks"`
	}
	if err := yaml.Unmarshal(raw, &tf); err != nil {
		t.Fatal(err)
	}
	depName := func(d any) string {
		switch d := d.(type) {
		case string:
			return d
		case map[string]any:
			s, _ := d["task"].(string)
			return s
		}
		return ""
	}
	for top := range tf.Tasks {
		seen := map[string]int{}
		var walk func(string)
		walk = func(name string) {
			for _, d := range tf.Tasks[name].Deps {
				n := depName(d)
				seen[n]++
				if seen[n] == 1 {
					walk(n)
				}
			}
		}
		walk(top)
		for n, c := range seen {
			if run := tf.Tasks[n].Run; c > 1 && run != "once" && run != "when_changed" {
				t.Errorf("task %s reaches %s %d times through deps, and %s lacks `run: once`", top, n, c, n)
			}
		}
	}
}
