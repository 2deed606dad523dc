package stages

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Byte units a recipe may use. KB, MB, GB are decimal; KiB, MiB, GiB binary.
const (
	KB  = 1000
	MB  = 1000 * KB
	GB  = 1000 * MB
	KiB = 1024
	MiB = 1024 * KiB
	GiB = 1024 * MiB
)

var units = map[string]int64{"B": 1, "KB": KB, "MB": MB, "GB": GB, "KiB": KiB, "MiB": MiB, "GiB": GiB}

// UnitNames is the list shown in errors, smallest first.
const UnitNames = "B, KB, MB, GB, KiB, MiB, GiB"

// Bytes is a byte count written in a recipe as `7GB`, `7.5GB`, `512MiB` or a plain integer.
type Bytes int64

// ParseBytes reads a byte count with an optional unit; a number without a unit is bytes.
func ParseBytes(s string) (Bytes, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		return 0, fmt.Errorf("bad size %q: expected a number followed by a unit (%s)", s, UnitNames)
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q: %q is not a number", s, num)
	}
	mult := int64(1)
	if unit != "" {
		m, ok := units[unit]
		if !ok {
			return 0, fmt.Errorf("bad size %q: unknown unit %q (use %s)", s, unit, UnitNames)
		}
		mult = m
	}
	v := n * float64(mult)
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return Bytes(math.Round(v)), nil
}

// String prints the size in the largest decimal unit that keeps it readable: 7GB, 1.5GB, 512MB.
func (b Bytes) String() string {
	v := int64(b)
	for _, u := range []struct {
		name string
		size int64
	}{{"GB", GB}, {"MB", MB}, {"KB", KB}} {
		if v >= u.size {
			return strconv.FormatFloat(math.Round(float64(v)/float64(u.size)*100)/100, 'f', -1, 64) + u.name
		}
	}
	return strconv.FormatInt(v, 10) + "B"
}

// Limit is a memory limit: a byte count, or `auto` (derived from the machine at run time).
type Limit struct {
	Bytes Bytes
	Auto  bool
}

func (l Limit) String() string {
	if l.Auto {
		return "auto"
	}
	return l.Bytes.String()
}
