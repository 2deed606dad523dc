package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/yai-dev/yai/mlx"
)

const indexFile = "model.safetensors.index.json"

// tensorSet is every tensor of a checkpoint, opened lazily: no data is read until a tensor
// is evaluated, so tensors that are dropped cost nothing.
type tensorSet struct {
	dir     string
	files   []string              // base names, sorted
	arrays  map[string]*mlx.Array // tensor name → lazy array
	fileOf  map[string]string     // tensor name → base name of the file holding it
	indexed map[string]string     // weight_map of the index, when there is one
}

// openTensors opens the checkpoint in dir: the files listed by model.safetensors.index.json
// when it exists, else every model*.safetensors (as mlx-lm globs them).
func openTensors(dir string) (*tensorSet, error) {
	ts := &tensorSet{dir: dir, arrays: map[string]*mlx.Array{}, fileOf: map[string]string{}}
	files, err := ts.listFiles()
	if err != nil {
		return nil, err
	}
	ts.files = files
	for _, f := range files {
		arrays, _, err := mlx.LoadSafetensors(filepath.Join(dir, f))
		if err != nil {
			ts.free()
			return nil, err
		}
		for name, a := range arrays {
			if prev, dup := ts.fileOf[name]; dup {
				a.Free()
				ts.free()
				return nil, &TensorError{Tensor: name, File: filepath.Join(dir, f), Problem: "also stored in " + prev}
			}
			ts.arrays[name] = a
			ts.fileOf[name] = f
		}
	}
	for name, f := range ts.indexed {
		if got, ok := ts.fileOf[name]; ok && got != f {
			ts.free()
			return nil, &TensorError{Tensor: name, File: filepath.Join(dir, got), Problem: fmt.Sprintf("the index places it in %s", f)}
		}
		if _, ok := ts.fileOf[name]; !ok {
			ts.free()
			return nil, &TensorError{Tensor: name, File: filepath.Join(dir, f), Problem: "listed in " + indexFile + " but missing from the file"}
		}
	}
	return ts, nil
}

func (ts *tensorSet) listFiles() ([]string, error) {
	data, err := os.ReadFile(filepath.Join(ts.dir, indexFile))
	switch {
	case err == nil:
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &index); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(ts.dir, indexFile), err)
		}
		ts.indexed = index.WeightMap
		seen := map[string]bool{}
		var files []string
		for _, f := range index.WeightMap {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
		sort.Strings(files)
		return files, nil
	case os.IsNotExist(err):
		matches, err := filepath.Glob(filepath.Join(ts.dir, "model*.safetensors"))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("%s: no model*.safetensors files", ts.dir)
		}
		files := make([]string, len(matches))
		for i, m := range matches {
			files[i] = filepath.Base(m)
		}
		sort.Strings(files)
		return files, nil
	default:
		return nil, err
	}
}

// take hands the tensor over to the caller and forgets it.
func (ts *tensorSet) take(name string) *mlx.Array {
	a := ts.arrays[name]
	delete(ts.arrays, name)
	return a
}

// drop frees a tensor that will not be used.
func (ts *tensorSet) drop(name string) {
	ts.take(name).Free()
}

// where names the file a tensor is (or should be) in, for error messages.
func (ts *tensorSet) where(name string) string {
	if f, ok := ts.fileOf[name]; ok {
		return filepath.Join(ts.dir, f)
	}
	if f, ok := ts.indexed[name]; ok {
		return filepath.Join(ts.dir, f)
	}
	if len(ts.files) == 1 {
		return filepath.Join(ts.dir, ts.files[0])
	}
	return filepath.Join(ts.dir, "{"+strings.Join(ts.files, ",")+"}")
}

// free releases every tensor not taken.
func (ts *tensorSet) free() {
	for name, a := range ts.arrays {
		a.Free()
		delete(ts.arrays, name)
	}
}

// remaining lists the tensors not taken, sorted.
func (ts *tensorSet) remaining() []string {
	names := make([]string, 0, len(ts.arrays))
	for n := range ts.arrays {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TensorError is a problem with one tensor of a checkpoint: missing, unexpected, of the
// wrong shape or dtype.
type TensorError struct {
	Tensor  string
	File    string
	Problem string
}

func (e *TensorError) Error() string {
	return fmt.Sprintf("%s: tensor %q: %s", e.File, e.Tensor, e.Problem)
}
