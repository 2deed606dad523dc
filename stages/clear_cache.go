package stages

import (
	"context"

	"github.com/yai-dev/yai/stages/stage"
)

// ClearCacheConfig configures clearing MLX's buffer cache.
type ClearCacheConfig struct {
	Quiet bool `yaml:"quiet" default:"true" doc:"log at debug level instead of info"`
}

// ClearCache returns MLX's cached buffers to the system.
var ClearCache = Define(Def[ClearCacheConfig]{
	Name:    "clear-cache",
	Summary: "return MLX's cached buffers to the system",
	Doc: "Calls MLX's clear_cache. Freed cache shows as a drop in mlx.cache (and, on unified " +
		"memory, in rss). Drive it with a trigger, e.g. the seed's rule " +
		"`when: step % (limit < 10*GB ? 5 : 10) == 0`.",
	Events:     []stage.Event{stage.AfterStep, stage.BeforeStep, stage.OnEval, stage.Setup, stage.Teardown},
	ResumeSafe: true,
	Build:      buildClearCache,
})

func buildClearCache(c *ClearCacheConfig) (stage.Stage, error) {
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		before := s.Memory.Cache()
		s.Memory.ClearCache()
		after := s.Memory.Cache()
		s.Note("cache_freed", before-after)
		log := s.Log.Info
		if c.Quiet {
			log = s.Log.Debug
		}
		log("cleared MLX cache", "before", Bytes(before), "after", Bytes(after))
		return nil
	}), nil
}
