package rundir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testdata/runs holds run directories written by the engine before this package owned the
// format (see testdata/README): a finished run with checkpoints at steps 4 and 8, its resume
// to step 10, and a run a guard stopped at step 6 whose rank 1 recorded a failure, with the
// launcher's ranks.json. They must read, and write back byte for byte.
const fixtures = "testdata/runs"

var (
	finished = filepath.Join(fixtures, "fixture-20260301T101500Z")
	resumed  = filepath.Join(fixtures, "fixture-20260301T101500Z-2")
	guarded  = filepath.Join(fixtures, "fixture-20260301T101500Z-3")
)

func TestFixtureReads(t *testing.T) {
	runs, problems, err := List(fixtures)
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	type row struct {
		Name, Status, Hash string
		Steps              []int64
		Torn               bool
	}
	var got []row
	for _, r := range runs {
		var steps []int64
		for _, m := range r.Steps {
			steps = append(steps, m.Step)
		}
		got = append(got, row{r.Name, r.Status(), r.RecipeHash[:12], steps, r.Torn})
		if want := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC); !r.Started.Equal(want) {
			t.Errorf("%s started %v", r.Name, r.Started)
		}
		if r.Recipe.Name != "fixture" || r.Recipe.Kinds["ckpt"] != "checkpoint" {
			t.Errorf("%s recipe %+v", r.Name, r.Recipe)
		}
	}
	want := []row{
		{"fixture-20260301T101500Z-3", "stopped by guard", "24189dc97fa5", []int64{1, 2, 3, 4, 5, 6}, false},
		{"fixture-20260301T101500Z-2", "done", "aa11d199ad03", []int64{9, 10}, false},
		{"fixture-20260301T101500Z", "done", "64e43652389a", []int64{1, 2, 3, 4, 5, 6, 7, 8}, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	r, _ := Read(resumed)
	if r.Result.Parent == "" || r.Result.ResumedFrom == "" || r.Result.Steps != 10 {
		t.Errorf("resumed result %+v", r.Result)
	}
	c, err := LatestCheckpoint(guarded)
	if err != nil || c.State.Step != 6 || !cmp.Equal(c.State.PendingAfterStep, []string{"eval", "ckpt"}) {
		t.Errorf("guarded run's checkpoint: %+v, %v", c, err)
	}
	if steps, err := Checkpoints(finished); err != nil || !cmp.Equal(steps, []int64{4, 8}) {
		t.Errorf("finished run's checkpoints %v, %v", steps, err)
	}
	if res, err := ReadResult(guarded, 1); err != nil || res.ExitCode != 1 || res.Reason == "" {
		t.Errorf("rank 1's result: %+v, %v", res, err)
	}
	if exits, err := ReadRanks(guarded); err != nil || len(exits) != 2 || !exits[1].Killed {
		t.Errorf("ranks.json: %+v, %v", exits, err)
	}
}

// Every file read from the fixtures and written back is the same bytes: the format did not
// change.
func TestFixtureWritesBack(t *testing.T) {
	for _, run := range []string{finished, resumed, guarded} {
		out := t.TempDir()
		same := func(name string) {
			t.Helper()
			want, _ := os.ReadFile(filepath.Join(run, name))
			got, err := os.ReadFile(filepath.Join(out, name))
			if err != nil || string(got) != string(want) {
				t.Errorf("%s: %s written back differs (%v):\n%s\nwant\n%s", filepath.Base(run), name, err, got, want)
			}
		}
		ms, torn, err := ReadMetrics(run, 0)
		if err != nil || torn {
			t.Fatal(err, torn)
		}
		w, err := CreateMetrics(out, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			w.Write(m)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		same(MetricsFile)

		for _, rank := range []int{0, 1} {
			res, err := ReadResult(run, rank)
			if err != nil {
				t.Fatal(err)
			}
			if res != nil {
				if err := WriteResult(out, rank, *res); err != nil {
					t.Fatal(err)
				}
				same(RankFile(rank, ResultFile))
			}
		}
		recipe, _ := os.ReadFile(filepath.Join(run, RecipeFile))
		if _, err := WriteRecipe(out, recipe); err != nil {
			t.Fatal(err)
		}
		same(HashFile)
		if exits, err := ReadRanks(run); err == nil {
			if err := WriteRanks(out, exits); err != nil {
				t.Fatal(err)
			}
			same(RanksFile)
		}
		if data, err := os.ReadFile(filepath.Join(run, ResumeFile)); err == nil {
			var r Resumed
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			if err := WriteResumed(out, r); err != nil {
				t.Fatal(err)
			}
			same(ResumeFile)
		}
		steps, _ := Checkpoints(run)
		for _, s := range steps {
			var st EngineState
			data, _ := os.ReadFile(filepath.Join(CheckpointDir(run, s), EngineFile))
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatal(err)
			}
			recipe, _ := os.ReadFile(filepath.Join(CheckpointDir(run, s), RecipeFile))
			save := func(dir string) error { return os.CopyFS(dir, os.DirFS(CheckpointDir(run, s))) }
			if _, err := WriteCheckpoint(out, st, recipe, save); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{EngineFile, RecipeFile, HashFile} {
				same(filepath.Join(CheckpointsDir, filepath.Base(CheckpointDir(run, s)), f))
			}
		}
	}
}
