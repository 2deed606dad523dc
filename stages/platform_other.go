//go:build !linux && !darwin

package stages

// platformUnmeasured: elsewhere neither the process's memory nor swap can be read.
func platformUnmeasured() map[string]string {
	return map[string]string{
		"rss":  "this platform gives no process memory figure",
		"swap": "this platform gives no swap figure",
	}
}
