package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/yai-dev/yai/internal/generate"
)

func init() {
	register(command{name: "generate", summary: "generate text from a model, with or without adapters", run: func(args []string) int {
		return generateMain(args, os.Stdin, os.Stdout, os.Stderr)
	}})
}

const generateUsage = `
Usage: yai generate --model MODEL [--adapter DIR] [--prompt TEXT | < prompt.txt] [flags]

Generates a reply with a key/value cache and streams it to stdout as it is decoded. The
prompt goes through the model's chat template (--raw sends it as plain text); without
--prompt (or with --prompt -) it is read from stdin. Prompt and generation tokens/s and
MLX's peak memory are printed to stderr at the end. Stops at the model's EOS or after
--max-tokens. Greedy by default; --temp with --top-p, --top-k, --min-p and --seed samples.`

func generateMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("generate", generateUsage)
	fs.SetOutput(stderr)
	var mf modelFlags
	mf.register(fs, false)
	var sf samplingFlags
	sf.register(fs, 256)
	prompt := fs.String("prompt", "", "the prompt; - or absent reads stdin")
	system := fs.String("system", "", "a system message before the prompt (chat template only)")
	raw := fs.Bool("raw", false, "send the prompt as plain text, without the chat template")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageErrorTo(stderr, fs, "unexpected arguments %q (quote the prompt and pass it with --prompt)", pos)
	}
	if mf.model == "" {
		return usageErrorTo(stderr, fs, "--model is required")
	}
	if err := sf.check(); err != nil {
		return usageErrorTo(stderr, fs, "%v", err)
	}
	if *raw && *system != "" {
		return usageErrorTo(stderr, fs, "--system needs the chat template: drop --raw or --system")
	}
	text := *prompt
	if text == "" || text == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintln(stderr, "yai generate: reading the prompt from stdin:", err)
			return 1
		}
		text = strings.TrimRight(string(data), "\n")
	}
	if text == "" {
		return usageErrorTo(stderr, fs, "empty prompt: give --prompt or pipe one on stdin")
	}
	l, ok := mf.load("generate", stderr)
	if !ok {
		return 1
	}
	defer l.Free()
	opts, err := sf.options(l)
	if err != nil {
		return usageErrorTo(stderr, fs, "%v", err)
	}
	ids, err := generate.PromptTokens(l.Tokenizer, *system, text, *raw)
	if err != nil {
		fmt.Fprintln(stderr, "yai generate:", err)
		return 1
	}
	stream := generate.NewTextStream(l.Tokenizer)
	st, err := generate.Generate(l.Model, ids, opts, func(tok int32) error {
		_, err := io.WriteString(stdout, stream.Add(tok))
		return err
	})
	io.WriteString(stdout, stream.Flush()+"\n")
	if err != nil {
		fmt.Fprintln(stderr, "yai generate:", err)
		return 1
	}
	fmt.Fprintln(stderr, "==========")
	printStats(stderr, st)
	return 0
}
