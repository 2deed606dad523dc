package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// parseFlags parses args allowing flags after positional arguments (yai validate r.yaml --json).
// It returns the positional arguments, or an exit code when parsing ended the command
// (0 for --help, 2 for a usage error).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, 0, false
			}
			return nil, 2, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// listFlag collects a repeatable flag such as --set.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// newFlagSet builds a flag set whose --help prints usage (the synopsis and description) and
// the flags.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, strings.TrimSpace(usage))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(os.Stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// usageError prints a short usage error and returns exit code 2.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "yai %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(os.Stderr, "Run 'yai %s --help' for usage.\n", fs.Name())
	return 2
}

// inRange is nil when v lies in [lo, hi], else an error naming the flag: a number out of its
// range is a usage error (exit 2) before anything runs, never a failure later.
func inRange[T int | int64 | uint | uint64 | float64](name string, v, lo, hi T) error {
	if v >= lo && v <= hi { // false for NaN
		return nil
	}
	return fmt.Errorf("--%s must be in [%v, %v], got %v", name, lo, hi, v)
}

// given reports whether the flag was set on the command line.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// firstError is the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
