// Package memplan decides, once per run, how a recipe's training step meets its memory limit:
// from the recipe's workload, the model's headers and the device, it chooses the compute
// dtype, which products run through dequantized weights, MLX's memory and cache limits and
// the schedule a step starts with. The dry run prints the decision, the run obeys it, and the
// governor learns against its estimate. It reads headers only and builds with cgo off.
package memplan
