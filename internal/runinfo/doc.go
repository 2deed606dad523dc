// Package runinfo reads what a run left in its directory: metrics.jsonl (one line per
// step), result.json (how it ended), recipe.yaml and recipe.sha256. It is a reader only,
// independent of the engine that writes these files, and it tolerates a run that is still
// going or was killed: a missing result.json or a torn last metrics line.
package runinfo
