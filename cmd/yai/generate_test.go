package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/internal/tokenizer"
)

// mlxlmChat asks mlx_lm for its greedy reply to messages (chat template, generation
// prompt), decoded with yai's tokenizer the way yai prints it.
func mlxlmChat(t *testing.T, modelDir, adapter string, messages []tokenizer.Message, maxTokens int) string {
	t.Helper()
	if adapter == "" {
		adapter = "-"
	}
	msgs, _ := json.Marshal(messages)
	script := filepath.Join(testenv.ModuleRoot(t), "internal", "generate", "testdata", "mlxlm_generate.py")
	cmd := exec.Command(testenv.Python(t), script, "chat", modelDir, adapter, string(msgs), fmt.Sprint(maxTokens))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mlx_lm chat: %v\n%s", err, stderr.String())
	}
	var ref struct{ Tokens []int32 }
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Decode(ref.Tokens, true)
}

func runCmd(t *testing.T, main func(args []string, stdin *strings.Reader, stdout, stderr *strings.Builder) int, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := main(args, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func generateCmd(args []string, stdin *strings.Reader, stdout, stderr *strings.Builder) int {
	return generateMain(args, stdin, stdout, stderr)
}

func chatCmd(args []string, stdin *strings.Reader, stdout, stderr *strings.Builder) int {
	return chatMain(args, stdin, stdout, stderr, false)
}

// yai generate prints mlx_lm's greedy reply (chat template applied to the prompt), with and
// without adapters, on two model shapes, and its figures on stderr.
func TestGenerateCommandMatchesMLXLM(t *testing.T) {
	const prompt = "Tell me about the blue owl."
	var dir, adapter string
	for _, preset := range []string{"micro", "tiny"} {
		dir = testmodel.Tiny(t, preset)
		adapter = testmodel.RandomAdapter(t, dir, 11, 0.3)
		var outs []string
		for _, ad := range []string{"", adapter} {
			args := []string{"--model", dir, "--prompt", prompt, "--max-tokens", "24"}
			if ad != "" {
				args = append(args, "--adapter", ad)
			}
			out, errOut, code := runCmd(t, generateCmd, "", args...)
			if code != 0 {
				t.Fatalf("yai generate %v: exit %d\n%s", args, code, errOut)
			}
			want := mlxlmChat(t, dir, ad, []tokenizer.Message{{"role": "user", "content": prompt}}, 24)
			if out != want+"\n" {
				t.Errorf("%s, adapter %q: yai generate printed %q, mlx_lm %q", preset, ad, out, want)
			}
			for _, figure := range []string{"prompt: ", "tokens/s", "generation: ", "peak memory: "} {
				if !strings.Contains(errOut, figure) {
					t.Errorf("stderr lacks %q:\n%s", figure, errOut)
				}
			}
			outs = append(outs, out)
		}
		t.Logf("%s: base %q, adapted %q", preset, outs[0], outs[1])
	}
	// The prompt can come from stdin too, and the run directory stands for its adapters.
	runDir := t.TempDir()
	if err := copyDir(adapter, filepath.Join(runDir, "adapters")); err != nil {
		t.Fatal(err)
	}
	fromFlag, _, _ := runCmd(t, generateCmd, "", "--model", dir, "--adapter", adapter, "--prompt", prompt, "--max-tokens", "24")
	fromStdin, errOut, code := runCmd(t, generateCmd, prompt+"\n", "--model", dir, "--adapter", runDir, "--max-tokens", "24")
	if code != 0 || fromStdin != fromFlag {
		t.Errorf("stdin prompt with a run directory: exit %d, %q, want %q\n%s", code, fromStdin, fromFlag, errOut)
	}
}

func TestGenerateCommandErrors(t *testing.T) {
	dir := testmodel.Tiny(t, "micro")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--prompt", "hi"}, 2, "--model is required"},
		{[]string{"--model", dir, "--prompt", "hi", "--raw", "--system", "be brief"}, 2, "--system needs the chat template"},
		{[]string{"--model", dir, "--prompt", "hi", "--top-k", "5"}, 2, "temperature"},
		{[]string{"--model", dir, "--prompt", "hi", "--adapter", t.TempDir()}, 1, "adapter_config.json"},
		{[]string{"--model", filepath.Join(t.TempDir(), "nope"), "--prompt", "hi"}, 1, "not found"},
	}
	for _, c := range cases {
		_, errOut, code := runCmd(t, generateCmd, "", c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

// Three piped turns: each reply is mlx_lm's greedy reply to the whole conversation so far,
// so the template saw the history; the third differs from a reply without history.
func TestChatThreeTurnsKeepHistory(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	turns := []string{"Ben has a blue dog.", "What colour is the dog?", "And whose dog is it?"}
	out, errOut, code := runCmd(t, chatCmd, strings.Join(turns, "\n")+"\n", "--model", dir, "--adapter", adapter, "--max-tokens", "12")
	if code != 0 {
		t.Fatalf("yai chat: exit %d\n%s", code, errOut)
	}
	var history []tokenizer.Message
	var want strings.Builder
	for _, u := range turns {
		history = append(history, tokenizer.Message{"role": "user", "content": u})
		reply := mlxlmChat(t, dir, adapter, history, 12)
		history = append(history, tokenizer.Message{"role": "assistant", "content": reply})
		want.WriteString(reply + "\n")
	}
	if out != want.String() {
		t.Fatalf("yai chat printed\n%q\nmlx_lm answers\n%q", out, want.String())
	}
	t.Logf("replies: %q", out)
	alone := mlxlmChat(t, dir, adapter, []tokenizer.Message{{"role": "user", "content": turns[2]}}, 12)
	if alone == history[5]["content"] {
		t.Errorf("the third reply is the same without history (%q): the test proves nothing", alone)
	}
	// /reset forgets: the reply to the third turn after a reset is the reply without history.
	out, _, _ = runCmd(t, chatCmd, turns[0]+"\n/reset\n"+turns[2]+"\n/quit\nignored\n", "--model", dir, "--adapter", adapter, "--max-tokens", "12")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || lines[1] != alone {
		t.Errorf("after /reset: %q, want the reply without history %q", lines, alone)
	}
}
