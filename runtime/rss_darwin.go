package runtime

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// processRSS: the physical footprint needs proc_pid_rusage, which the MLX backend reads
// (its Memory implements RSS); without it there is no figure.
func processRSS() (int64, bool) { return 0, false }

// systemSwap is the swap in use on the machine, from sysctl vm.swapusage (struct xsw_usage:
// total, avail, used as uint64).
func systemSwap() (int64, bool) {
	b, err := unix.SysctlRaw("vm.swapusage")
	if err != nil || len(b) < 24 {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(b[16:24])), true
}
