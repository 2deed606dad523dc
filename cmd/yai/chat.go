package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/yai-dev/yai/internal/generate"
	"golang.org/x/term"
)

func init() {
	register(command{name: "chat", summary: "talk with a model over several turns", run: func(args []string) int {
		interactive := term.IsTerminal(int(os.Stdin.Fd()))
		return chatMain(args, os.Stdin, os.Stdout, os.Stderr, interactive)
	}})
}

const chatUsage = `
Usage: yai chat --model MODEL [--adapter DIR] [flags]

An interactive conversation: each line you type is a user turn; the reply streams back, and
the whole history goes through the model's chat template every turn. /reset forgets the
history, /quit (or Ctrl-D) ends. Without a terminal, each line of stdin is one turn and
replies are printed one after another, so a conversation can be piped in.`

// maxChatLine is the longest stdin line (one turn) chat reads.
var maxChatLine = 16 << 20

func chatMain(args []string, stdin io.Reader, stdout, stderr io.Writer, interactive bool) int {
	fs := newFlagSet("chat", chatUsage)
	fs.SetOutput(stderr)
	var mf modelFlags
	mf.register(fs, false)
	var sf samplingFlags
	sf.register(fs, 512)
	system := fs.String("system", "", "a system message that opens the conversation")
	verbose := fs.Bool("verbose", false, "print tokens/s and peak memory after each reply (stderr)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageErrorTo(stderr, fs, "unexpected arguments %q", pos)
	}
	if mf.model == "" {
		return usageErrorTo(stderr, fs, "--model is required")
	}
	if err := sf.check(); err != nil {
		return usageErrorTo(stderr, fs, "%v", err)
	}
	l, ok := mf.load("chat", stderr)
	if !ok {
		return 1
	}
	defer l.Free()
	opts, err := sf.options(l)
	if err != nil {
		return usageErrorTo(stderr, fs, "%v", err)
	}
	c := &generate.Chat{Loaded: l, System: *system, Options: opts}
	if interactive {
		fmt.Fprintln(stderr, "/reset forgets the conversation, /quit or Ctrl-D ends it.")
	}
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 0, min(64*1024, maxChatLine)), maxChatLine)
	for n := 1; ; n++ {
		if interactive {
			fmt.Fprint(stderr, ">> ")
		}
		if !in.Scan() {
			if errors.Is(in.Err(), bufio.ErrTooLong) {
				fmt.Fprintf(stderr, "yai chat: stdin line %d is longer than %d bytes, the most one turn takes: send a shorter message\n", n, maxChatLine)
				return 1
			}
			break
		}
		line := strings.TrimSpace(in.Text())
		switch line {
		case "":
			continue
		case "/quit", "/exit":
			return 0
		case "/reset":
			c.Reset()
			if interactive {
				fmt.Fprintln(stderr, "(conversation reset)")
			}
			continue
		}
		_, st, err := c.Send(line, func(text string) { io.WriteString(stdout, text) })
		io.WriteString(stdout, "\n")
		if err != nil {
			fmt.Fprintln(stderr, "yai chat:", err)
			return 1
		}
		if *verbose {
			printStats(stderr, st)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(stderr, "yai chat: reading stdin:", err)
		return 1
	}
	if interactive {
		fmt.Fprintln(stderr)
	}
	return 0
}
