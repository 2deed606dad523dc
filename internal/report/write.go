package report

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/rundir"
)

// SummaryFile holds the text summaries beside the charts.
const SummaryFile = "summary.txt"

// Write creates outDir, which must not exist, holding loss.png, memory.png and summary.txt
// for runs, and returns the summaries.
func Write(outDir string, runs []*rundir.Run) ([]Summary, error) {
	sums := make([]Summary, len(runs))
	var text strings.Builder
	for i, r := range runs {
		sums[i] = Summarize(r)
		text.WriteString(sums[i].Text())
	}
	err := atomicfile.NewDir(outDir, func(tmp string) error {
		if err := WriteCharts(tmp, runs); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, SummaryFile), []byte(text.String()), 0o644)
	})
	return sums, err
}
