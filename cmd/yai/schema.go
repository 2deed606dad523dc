package main

import (
	"fmt"
	"os"

	"github.com/yai-dev/yai/schema"
)

func init() {
	register(command{name: "schema", summary: "print the JSON Schema of recipe format v1", run: runSchema})
}

const schemaUsage = `
Usage: yai schema

Prints the JSON Schema of recipe format v1, generated from the stage registry. Point your
editor at it (the shipped recipes start with a yaml-language-server $schema comment).`

func runSchema(args []string) int {
	fs := newFlagSet("schema", schemaUsage)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return usageError(fs, "takes no arguments")
	}
	b, err := schema.Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "yai schema:", err)
		return 1
	}
	os.Stdout.Write(b)
	return 0
}
