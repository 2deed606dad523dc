package mlxbackend

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/data"
)

// dataFile holds, in a checkpoint, where the training batches stand and the state of the
// generator that orders training and validation batches.
const dataFile = "data.json"

type dataState struct {
	Train  data.Position    `json:"train"`
	Random data.RandomState `json:"random"`
}

// SaveState writes the training state into a checkpoint directory: adapters, optimizer state,
// counters, accumulated gradients and the dropout key (the trainer's files), and the data
// position with the batch generator's state.
func (r *Training) SaveState(dir string) error {
	if r.trainer == nil || r.batches == nil {
		return errors.New("nothing to checkpoint before the setup stages have run")
	}
	if err := r.trainer.SaveState(dir); err != nil {
		return err
	}
	js, err := json.Marshal(dataState{Train: r.batches.Position(), Random: r.random.State()})
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, dataFile), js, 0o644)
}

// LoadState restores what SaveState wrote, after the setup stages built the same model,
// adapters and data.
func (r *Training) LoadState(dir string) error {
	if r.trainer == nil || r.batches == nil {
		return errors.New("the recipe's setup stages built no trainer or no training data to restore into")
	}
	raw, err := os.ReadFile(filepath.Join(dir, dataFile))
	if err != nil {
		return err
	}
	var st dataState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, dataFile), err)
	}
	if err := r.trainer.LoadState(dir); err != nil {
		return err
	}
	if err := r.random.SetState(st.Random); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, dataFile), err)
	}
	if err := r.batches.Seek(st.Train); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, dataFile), err)
	}
	return nil
}
