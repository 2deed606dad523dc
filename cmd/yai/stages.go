package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

func init() {
	register(command{name: "stages", summary: "list stage kinds, or document one: its settings and events", run: runStages})
}

const stagesUsage = `
Usage: yai stages [NAME]

Without NAME, lists every stage kind and the names triggers can use. With NAME, documents one
kind: what it does, the events it may listen to, and each setting with its type, default and
allowed values.`

func runStages(args []string) int {
	fs := newFlagSet("stages", stagesUsage)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	switch len(pos) {
	case 0:
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "KIND\tEVENTS\tSUMMARY")
		for _, k := range stages.Kinds() {
			fmt.Fprintf(w, "%s\t%s\t%s\n", k.Name, events(k), k.Summary)
		}
		w.Flush()
		fmt.Println("\nTrigger names (when: expressions):")
		w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		for _, n := range stage.FigureDocs() {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", n.Name, n.Type, n.Doc)
		}
		w.Flush()
		fmt.Println("\nRun 'yai stages NAME' for a kind's settings.")
		return 0
	case 1:
		k, ok := stages.Get(pos[0])
		if !ok {
			fmt.Fprintf(os.Stderr, "yai stages: unknown stage kind %q (kinds: %s)\n", pos[0], strings.Join(stages.KindNames(), ", "))
			return 1
		}
		fmt.Printf("%s — %s\n\n%s\n\nevents: %s (default %s)\n", k.Name, k.Summary, k.Doc, events(k), k.DefaultEvent())
		if k.Once {
			fmt.Println("at most one per recipe")
		}
		if len(k.Fields) > 0 {
			fmt.Println("\nsettings (with:):")
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "  KEY\tTYPE\tDEFAULT\tALLOWED\tMEANING")
			for _, f := range k.Fields {
				fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", f.Name, f.TypeName(), orDash(f.Default), allowed(f), f.Doc)
			}
			w.Flush()
		}
		return 0
	}
	return usageError(fs, "want at most one stage kind")
}

func events(k *stages.Kind) string {
	s := make([]string, len(k.Events))
	for i, e := range k.Events {
		s[i] = string(e)
	}
	return strings.Join(s, ",")
}

func allowed(f stages.Field) string {
	var parts []string
	if len(f.Enum) > 0 {
		parts = append(parts, strings.Join(f.Enum, "|"))
	}
	if f.Min != nil {
		parts = append(parts, fmt.Sprintf(">= %g", *f.Min))
	}
	if f.Max != nil {
		parts = append(parts, fmt.Sprintf("<= %g", *f.Max))
	}
	return orDash(strings.Join(parts, " "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
