package rundir

import (
	"os"
	"path/filepath"
	"sort"
)

// List reads every run directory directly under dir, newest first. Entries that are not
// run directories are skipped; a run directory that cannot be read is returned in errs.
func List(dir string) (runs []*Run, errs []error, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !e.IsDir() || !IsRunDir(path) {
			continue
		}
		r, err := Read(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		runs = append(runs, r)
	}
	sort.SliceStable(runs, func(i, j int) bool {
		if !runs[i].Started.Equal(runs[j].Started) {
			return runs[i].Started.After(runs[j].Started)
		}
		return runs[i].Name > runs[j].Name
	})
	return runs, errs, nil
}
