package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/stages/mlxbackend"
)

// version is yai's own version, set at release time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func init() {
	register(command{name: "version", summary: "print yai's version, the MLX version and the default device", run: runVersion})
}

func runVersion(args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: yai version\n\nPrints yai's version, the MLX library version and the default device.")
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	fmt.Printf("yai %s\nmlx %s\ndevice %s, %s\n", version, mlx.Version(), mlx.DefaultDevice(), mlxbackend.Device().Name)
	return 0
}
