package recipe

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
)

// dryRunPackages are the packages `yai validate` runs through: the recipe compiler, the memory
// plan, the stage catalog and contract, the JSON Schema, the model description, and the
// engine (which a program embeds without a backend). None may need libmlx.
var dryRunPackages = []string{"./recipe", "./memplan", "./stages", "./stages/stage", "./schema", "./modeldir", "./runtime"}

// The dry run links no native code: no package it depends on is yai/mlx or uses cgo. Standard
// library packages with optional cgo files (net's resolver, which thrift brings in for the
// Parquet reader) build without them, as the CGO_ENABLED=0 build below shows.
func TestDryRunNeedsNoCgo(t *testing.T) {
	root := testenv.ModuleRoot(t)
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}} {{.Standard}}"}, dryRunPackages...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		path, cgoFiles, std := fields[0], fields[1], fields[2] == "true"
		deps++
		if path == "github.com/yai-dev/yai/mlx" {
			t.Errorf("the dry run depends on %s", path)
		}
		if cgoFiles != "0" && !std {
			t.Errorf("the dry run depends on %s, which has %s cgo files", path, cgoFiles)
		}
	}
	if deps < 10 {
		t.Fatalf("go list listed %d packages; want the dry run's dependencies", deps)
	}

	build := exec.Command("go", append([]string{"build", "-o", os.DevNull}, dryRunPackages...)...)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Errorf("CGO_ENABLED=0 go build %s: %v\n%s", strings.Join(dryRunPackages, " "), err, out)
	}
}
