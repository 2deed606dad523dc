package runtime

import (
	"bytes"
	"os"
	"strconv"
)

// processRSS is the resident set size of this process in bytes, from /proc/self/statm.
func processRSS() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	return pages * int64(os.Getpagesize()), err == nil
}

// systemSwap is the swap in use on the machine, from /proc/meminfo.
func systemSwap() (int64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	var total, free int64
	found := 0
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			continue
		}
		switch string(f[0]) {
		case "SwapTotal:":
			total, found = kb*1024, found+1
		case "SwapFree:":
			free, found = kb*1024, found+1
		}
	}
	return total - free, found == 2
}
