package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/yai-dev/yai/internal/atomicfile"
)

// RecordRankFailure writes into a rank's result file (and log) why its distributed run ended
// when the engine alone cannot say: a peer was lost, or the rank could not join its group.
// The engine's own error, when it got to write one, is kept in front; when the rank could
// not end by itself (stuck in a collective on a silent peer) this is the only record. It
// returns the exit code the rank ends with.
func RecordRankFailure(dir string, rank int, cause error) int {
	name, logName := "result.json", "run.log"
	if rank > 0 {
		name, logName = fmt.Sprintf("rank-%d.result.json", rank), fmt.Sprintf("rank-%d.log", rank)
	}
	res := ResultFile{ExitCode: 1}
	if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
		_ = json.Unmarshal(data, &res)
	}
	if res.ExitCode == 0 {
		res.ExitCode = 1
	}
	if res.Error != "" {
		res.Error += "; "
	}
	res.Error += "distributed run: " + cause.Error()
	if res.Reason == "" {
		res.Reason = cause.Error()
	}
	data, _ := json.MarshalIndent(res, "", "  ")
	_ = atomicfile.Write(filepath.Join(dir, name), append(data, '\n'), 0o644)
	if f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		fmt.Fprintf(f, "time=%s level=ERROR msg=\"distributed run failed\" err=%q\n", time.Now().Format(time.RFC3339), cause.Error())
		f.Close()
	}
	return res.ExitCode
}
