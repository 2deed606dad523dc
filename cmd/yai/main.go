// Command yai runs and checks fine-tuning recipes: versioned YAML stage graphs executed over MLX.
package main

import (
	"fmt"
	"os"
)

// command is one `yai` subcommand. Each lives in its own file and registers itself in commands.
type command struct {
	name    string
	summary string
	run     func(args []string) int // returns the exit code
}

var commands []command

func register(c command) { commands = append(commands, c) }

func usage() {
	fmt.Fprintln(os.Stderr, "yai: fine-tune 4-bit LLMs with LoRA under a memory budget you declare.")
	fmt.Fprintln(os.Stderr, "\nUsage: yai <command> [flags] [args]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'yai <command> --help' for a command's flags.")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	for _, c := range commands {
		if c.name == os.Args[1] {
			os.Exit(c.run(os.Args[2:]))
		}
	}
	fmt.Fprintf(os.Stderr, "yai: unknown command %q\n", os.Args[1])
	usage()
	os.Exit(2)
}
