// Package rundir owns the run-directory format: it is the one writer and the one reader of
// every file a run leaves, so the engine, `yai runs`, `yai report` and a resume agree on it.
//
// A run directory runs/<name>-<UTC time>[-n] holds:
//
//	recipe.yaml, recipe.sha256   the recipe as run (overrides applied) and its sha256
//	run.log                      the run's log
//	metrics.jsonl                one line per step (Metrics); a killed run may leave the last torn
//	result.json                  how the run ended (Result); missing while it runs or when killed
//	resume.json                  for a resumed run: the parent and checkpoint it continues (Resumed)
//	checkpoints/step-NNNNNNNN/   complete checkpoints: the backend's files, engine.json
//	                             (EngineState), recipe.yaml and recipe.sha256
//	.lock                        held (flock) by the one process writing or resuming the run
//
// A distributed run shares one directory: rank 0 writes it as a single process would; rank N
// writes rank-N.log, rank-N.metrics.jsonl and rank-N.result.json; the launcher writes
// ranks.json (RankExit per rank).
//
// Writes are atomic (a reader sees a whole file or none) and never replace a file of another
// run. Reading tolerates a run that is still going or was killed: a missing result.json, a
// torn last metrics line, an unfinished checkpoint.
package rundir
