package mlxbackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// data: tokenize the training and validation sets and start the training batches.
func buildData(c *stages.DataConfig, r *Training) (stage.Stage, error) {
	r.dataCfg = c
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		if r.tok == nil {
			return errors.New("no tokenizer: a load-4bit stage must run first")
		}
		dir := r.info.DataDir
		if dir == "" {
			return errors.New("the recipe names no data directory")
		}
		trainOn, err := data.ParseTrainOn(c.Masking())
		if err != nil {
			return err
		}
		opts := data.Options{TrainOn: trainOn, Format: formatName(c.Format)}
		opts = opts.WithColumns(data.Columns(c.Columns))
		r.dataOpts = opts
		trainPath, err := data.FindSplit(dir, "train", c.Train)
		if err != nil {
			return err
		}
		train, err := data.LoadFile(trainPath, r.tok, opts)
		if err != nil {
			return err
		}
		if want := formatName(c.Format); want != "" && train.Format.String() != want {
			return fmt.Errorf("%s: rows are %s, the data stage says format %s", train.Path, train.Format, want)
		}
		r.train = train
		validPath, err := data.FindSplit(dir, "valid", c.Valid)
		if err != nil {
			return err
		}
		if r.valid, err = data.LoadFile(validPath, r.tok, opts); err != nil {
			return err
		}
		seed := uint32(c.Seed)
		if seed == 0 {
			seed = uint32(r.info.Seed)
		}
		r.random = data.NewNumpyRandom(seed)
		r.batches, err = data.NewBatches(r.train, data.BatchConfig{
			BatchSize:    c.BatchSize,
			MaxSeqLength: c.MaxSeqLength,
			Loop:         true,
			Random:       r.random,
			KeepOrder:    !c.Shuffle,
			Pack:         c.Pack,
			Logger:       s.Log,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", r.train.Path, err)
		}
		s.Log.Info("data ready", "train", r.train.Len(), "valid", r.valid.Len(), "format", r.train.Format.String(),
			"batches_per_epoch", r.batches.PerEpoch())
		return nil
	}), nil
}

func formatName(f string) string {
	if f == "auto" {
		return ""
	}
	return f
}
