package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// The files of a run directory.
const (
	RecipeFile     = "recipe.yaml"
	HashFile       = "recipe.sha256"
	LogFile        = "run.log"
	MetricsFile    = "metrics.jsonl"
	ResultFile     = "result.json"
	ResumeFile     = "resume.json"
	RanksFile      = "ranks.json"
	LockFile       = ".lock"
	CheckpointsDir = "checkpoints"
	EngineFile     = "engine.json" // in a checkpoint
)

// RankFile is the name under which rank writes name: name itself on rank 0, rank-N.name on
// rank N.
func RankFile(rank int, name string) string {
	if rank == 0 {
		return name
	}
	return fmt.Sprintf("rank-%d.%s", rank, name)
}

// LogName is the log of rank: run.log on rank 0, rank-N.log on rank N.
func LogName(rank int) string {
	if rank == 0 {
		return LogFile
	}
	return RankFile(rank, "log")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// stampLayout is the UTC time in run directory names.
const stampLayout = "20060102T150405Z"

// New creates a fresh directory runsDir/<name>-<UTC time>[-n]. It uses os.Mkdir, so an
// existing run directory is never reused or overwritten.
func New(runsDir, name string, now time.Time) (string, error) {
	if err := os.MkdirAll(runsDir, 0o755); err != nil {
		return "", err
	}
	name = unsafeName.ReplaceAllString(name, "-")
	if name == "" {
		name = "run"
	}
	base := filepath.Join(runsDir, name+"-"+now.UTC().Format(stampLayout))
	for n := 1; n <= 1000; n++ {
		dir := base
		if n > 1 {
			dir = fmt.Sprintf("%s-%d", base, n)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free run directory name under %s", base)
}

// CreateLog creates rank's log in dir: run.log must not exist yet (a run directory is
// never written twice); a rank's own log is started afresh.
func CreateLog(dir string, rank int) (*os.File, error) {
	flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if rank > 0 {
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	return os.OpenFile(filepath.Join(dir, LogName(rank)), flag, 0o644)
}
