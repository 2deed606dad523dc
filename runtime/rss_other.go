//go:build !linux && !darwin

package runtime

// processRSS and systemSwap: this platform gives neither figure.
func processRSS() (int64, bool) { return 0, false }
func systemSwap() (int64, bool) { return 0, false }
