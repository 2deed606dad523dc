package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/yai-dev/yai/recipes"
)

func init() {
	register(command{name: "recipes", summary: "list the recipes shipped with yai", run: runRecipes})
}

const recipesUsage = `
Usage: yai recipes

Lists the recipes shipped inside yai. Copy one out with 'yai init NAME [DIR]'.`

func runRecipes(args []string) int {
	fs := newFlagSet("recipes", recipesUsage)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return usageError(fs, "takes no arguments")
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, r := range recipes.List() {
		fmt.Fprintf(w, "%s\t%s\n", r.Name, r.Description)
	}
	w.Flush()
	return 0
}
