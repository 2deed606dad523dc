// Package report turns run directories into PNG charts and a text summary: loss and
// validation loss per step, and MLX active, peak and cache memory with RSS per step against
// the memory limit and the guard's threshold, with markers where the memory stages acted and
// where a step's MLX peak passed the limit. Several runs share each chart for comparison.
package report
