package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yai-dev/yai/internal/testenv"
)

// The official openai Python client, pointed at the server, gets yai generate's answers for
// chat and completions, streamed and not, on the base model and an adapter; an unknown model
// is its NotFoundError naming the served models, a wrong key its AuthenticationError.
func TestServeOpenAIClient(t *testing.T) {
	f := newFixture(t, Config{APIKey: "k3y"})
	const user = "Tell me about the blue owl."
	script := filepath.Join("testdata", "openai_client.py")
	cmd := exec.Command(testenv.Python(t), script, f.http.URL+"/v1", "k3y", strconv.Itoa(maxTokens), user, "micro", "owl")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openai_client.py: %v\n%s", err, stderr.String())
	}
	var got struct {
		Models  []string
		Answers map[string]struct {
			Text         string
			FinishReason string `json:"finish_reason"`
			Usage        []int
		}
		Unknown  string
		WrongKey string `json:"wrong_key"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if strings.Join(got.Models, ",") != "micro,owl,lark" {
		t.Errorf("models.list: %q", got.Models)
	}
	if len(got.Answers) != 8 {
		t.Errorf("%d answers, want 8: %s", len(got.Answers), out)
	}
	for key, a := range got.Answers {
		var model, kind, mode string
		fmt.Sscan(key, &model, &kind, &mode)
		ids := f.rawIDs(user)
		if kind == "chat" {
			ids = f.chatIDs(t, user)
		}
		want := f.want(t, model, ids, maxTokens)
		if a.Text != want || (a.FinishReason != "length" && a.FinishReason != "stop") {
			t.Errorf("%s: %q (%s), want %q", key, a.Text, a.FinishReason, want)
		}
		if a.Usage != nil && (len(a.Usage) != 2 || a.Usage[0] != len(ids)) {
			t.Errorf("%s: usage %v, want %d prompt tokens", key, a.Usage, len(ids))
		}
	}
	if !strings.Contains(got.Unknown, "micro, owl, lark") || got.WrongKey != "AuthenticationError" {
		t.Errorf("unknown model: %q; wrong key: %q", got.Unknown, got.WrongKey)
	}
}

// freePort is a TCP port on 127.0.0.1 nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMLXLMServer runs `python -m mlx_lm.server --model dir` on a free port and returns its
// base URL once it answers; the test's end stops it.
func startMLXLMServer(t testing.TB, dir string) string {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, testenv.Python(t), "-m", "mlx_lm.server", "--model", dir, "--port", strconv.Itoa(port), "--log-level", "WARNING")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Importing mlx_lm takes seconds on a busy machine; this bound only keeps a broken
	// start from hanging the test.
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
		select {
		case err := <-exited:
			t.Fatalf("mlx_lm.server exited: %v\n%s", err, stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
		if resp, err := http.Get(url + "/v1/models"); err == nil {
			resp.Body.Close()
			return url
		}
	}
	t.Fatalf("mlx_lm.server did not answer\n%s", stderr.String())
	return ""
}

// postJSON posts body to url and decodes the (non-streamed) answer.
func postJSON(t testing.TB, url string, body any) answer {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return readAnswer(t, resp)
}

// Greedy answers of yai serve equal mlx_lm.server's, run here as its own process on the same
// model: chat and completions, streamed and not, on the base model and with an adapter
// (mlx_lm.server's adapters field takes the adapter's path, with the model's path as the
// model; yai serve's model field takes the adapter's name). The one difference allowed is
// the space mlx_lm's detokenizer drops at the start of a generation.
func TestServeMatchesMLXLMServer(t *testing.T) {
	f := newFixture(t, Config{})
	ref := startMLXLMServer(t, f.dir)
	trimmed := 0
	defer func() { t.Logf("%d answers began with a space mlx_lm.server dropped", trimmed) }()
	users := []string{"Tell me about the blue owl.", "Where do larks sing?"}
	for _, adapter := range []string{"", "owl"} {
		for _, user := range users {
			for _, chat := range []bool{true, false} {
				for _, stream := range []bool{false, true} {
					body := map[string]any{"max_tokens": maxTokens, "temperature": 0, "stream": stream}
					path := "/v1/completions"
					if chat {
						path = "/v1/chat/completions"
						body["messages"] = []map[string]any{{"role": "user", "content": user}}
					} else {
						body["prompt"] = user
					}
					theirs := map[string]any{}
					for k, v := range body {
						theirs[k] = v
					}
					if adapter != "" {
						// mlx_lm.server applies a request's adapters only with a model
						// other than its default: it then loads the model anew with them.
						body["model"] = adapter
						theirs["model"], theirs["adapters"] = f.dir, f.adapters[adapter]
					}
					ours := f.post(t, path, "", body)
					want := postJSON(t, ref+path, theirs)
					what := fmt.Sprintf("adapter %q %s %q stream=%v", adapter, path, user, stream)
					if want.status != 200 {
						t.Fatalf("%s: mlx_lm.server answered %d %s", what, want.status, want.raw)
					}
					// mlx_lm's streaming detokenizers drop a space that begins the
					// generated text (trim_space); the tokens are the same (usage below),
					// and yai serve, as yai generate and OpenAI, keeps the space.
					if (ours.text != want.text && ours.text != " "+want.text) || ours.finish != want.finish {
						t.Errorf("%s: yai serve %q (%s), mlx_lm.server %q (%s)", what, ours.text, ours.finish, want.text, want.finish)
					}
					if ours.text != want.text {
						trimmed++
					}
					if !stream && (ours.usage == nil || want.usage == nil || *ours.usage != *want.usage) {
						t.Errorf("%s: usage %+v, mlx_lm.server %+v", what, ours.usage, want.usage)
					}
				}
			}
		}
	}
}
