package testenv

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// LongEnv is the environment variable that selects the long tier: YAI_TEST_LONG=1 (any value
// strconv.ParseBool reads as true) runs the soaks, sweeps and long runs at full size, as
// `go tool task test:long` does. Unset, the tests run at the size that proves their property
// in a fraction of the time, as `go tool task test` does. Both tiers run every test and
// every assertion; only the sizes differ.
const LongEnv = "YAI_TEST_LONG"

// Long reports whether the long tier was asked for. A value that is not a boolean panics:
// a typo must not quietly run the short tier.
func Long() bool {
	v := os.Getenv(LongEnv)
	if v == "" {
		return false
	}
	long, err := strconv.ParseBool(v)
	if err != nil {
		panic(fmt.Sprintf("%s=%q: want 1 or 0 (true or false)", LongEnv, v))
	}
	return long
}

// Tier names the tier that runs: "default" or "long".
func Tier() string {
	if Long() {
		return "long"
	}
	return "default"
}

// Size is short in the default tier and long in the long tier, and logs which tier ran and
// both sizes of what (say, "steps"), so that a failure's output says at which size it failed.
func Size(tb testing.TB, what string, short, long int) int {
	tb.Helper()
	n := short
	if Long() {
		n = long
	}
	tb.Logf("%s tier: %d %s (default %d, %s=1 %d)", Tier(), n, what, short, LongEnv, long)
	return n
}
