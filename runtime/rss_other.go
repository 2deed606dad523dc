//go:build !linux

package runtime

// processRSS is unknown here without cgo; a Memory that implements RSS() supplies it.
func processRSS() int64 { return 0 }
