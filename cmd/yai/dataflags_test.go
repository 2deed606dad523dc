package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/data"
)

func TestDataFlags(t *testing.T) {
	parse := func(args ...string) (string, data.Columns, error) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var d dataFlags
		d.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return d.read()
	}
	format, c, err := parse("--format", "sharegpt", "--columns", "messages=turns, role=who,content=said")
	want := data.Columns{Messages: "turns", Role: "who", Content: "said"}
	if err != nil || format != "sharegpt" || c != want {
		t.Errorf("read %q %+v %v, want sharegpt %+v", format, c, err, want)
	}
	if format, c, err := parse(); err != nil || format != "" || c != (data.Columns{}) {
		t.Errorf("no flags: %q %+v %v", format, c, err)
	}
	for _, args := range [][]string{{"--format", "jsonl"}, {"--columns", "message=turns"}, {"--columns", "role"}, {"--columns", "role="}} {
		if _, _, err := parse(args...); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: error %v, want one naming %s", args, err, args[0])
		}
	}
}
