package layers

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
)

const module = "github.com/yai-dev/yai/"

// imports lists, for every package of the module, the module packages its non-test files
// import: a test may drive its package through higher layers (the backend's tests run whole
// recipes through the engine).
func imports(t *testing.T) map[string][]string {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = testenv.ModuleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	graph := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		graph[pkg] = nil
		for _, imp := range fields[1:] {
			if dep, ok := strings.CutPrefix(imp, module); ok && dep != pkg && !slices.Contains(graph[pkg], dep) {
				graph[pkg] = append(graph[pkg], dep)
			}
		}
	}
	return graph
}

func TestImportsPointDown(t *testing.T) {
	graph := imports(t)
	if len(graph) < 20 {
		t.Fatalf("go list found %d packages; want the whole module", len(graph))
	}
	for pkg, deps := range graph {
		layer, ok := Layer[pkg]
		if !ok {
			t.Errorf("%s has no layer: place it in Layer", pkg)
			continue
		}
		for _, dep := range deps {
			if Layer[dep] > layer {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports point down only", pkg, layer, dep, Layer[dep])
			}
			if slices.Contains(Forbidden[pkg], dep) {
				t.Errorf("%s imports %s, which it must not", pkg, dep)
			}
		}
	}
	for pkg := range Layer {
		if _, ok := graph[pkg]; !ok {
			t.Errorf("Layer places %s, which is not a package of the module", pkg)
		}
	}
}
