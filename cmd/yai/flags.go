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
