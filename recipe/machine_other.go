//go:build !linux && !darwin

package recipe

// PhysicalMemory is the machine's RAM in bytes (0 if unknown).
func PhysicalMemory() int64 { return 0 }
