package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The log stage's loss= is the loss of the step it logs, as metrics.jsonl records it.
func TestLogStageShowsThisStepsLoss(t *testing.T) {
	src := strings.Replace(engineRecipe, "  - {id: save,", "  - {id: progress, kind: log, with: {figures: [step, loss]}}\n  - {id: save,", 1)
	res, err := Run(context.Background(), plan(t, src), quietOptions(t, &fakeMemory{}, fakeTraining{}.env()))
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v (exit %d)", err, res.ExitCode)
	}
	log, _ := os.ReadFile(filepath.Join(res.RunDir, "run.log"))
	// the fake's loss is 10/step: 10 at step 1, 5 at step 2
	for _, want := range []string{`"step":1,"loss":10}`, `"step":2,"loss":5}`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("run.log lacks %q:\n%s", want, log)
		}
	}
}
