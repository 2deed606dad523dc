package stages

// platformUnmeasured: on macOS the engine reads swap with sysctl vm.swapusage; the process's
// physical footprint needs the MLX backend, which measures it (proc_pid_rusage).
func platformUnmeasured() map[string]string {
	return map[string]string{"rss": "the physical footprint is read by the MLX backend, which this program lacks"}
}
