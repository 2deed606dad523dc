package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/mlx"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// yai serve answers a chat completion for an adapter given as NAME=DIR with what yai
// generate prints for the same prompt and adapter, applies --memory-limit and --api-key, and
// stops cleanly when its context ends (as on SIGINT or SIGTERM).
func TestServeCommand(t *testing.T) {
	dir := testmodel.Tiny(t, "micro")
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	const prompt = "Tell me about the blue owl."
	want, errOut, code := runCmd(t, generateCmd, "", "--model", dir, "--adapter", adapter, "--prompt", prompt, "--max-tokens", "16")
	if code != 0 {
		t.Fatalf("yai generate: exit %d\n%s", code, errOut)
	}
	previous := mlx.MemoryLimit()
	defer mlx.SetMemoryLimit(previous)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	addrs := make(chan string, 1)
	exit := make(chan int, 1)
	go func() {
		exit <- serveMain(ctx, []string{"--model", dir, "--adapter", "owl=" + adapter, "--port", "0",
			"--api-key", "k3y", "--memory-limit", "3GB"}, &stderr, func(a string) { addrs <- a })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case c := <-exit:
		t.Fatalf("yai serve exited %d\n%s", c, stderr.String())
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("listens on %s, want 127.0.0.1 by default", addr)
	}
	if got := mlx.MemoryLimit(); got != 3_000_000_000 {
		t.Errorf("MLX memory limit %d, want 3GB from --memory-limit", got)
	}
	body, _ := json.Marshal(map[string]any{"model": "owl", "max_tokens": 16, "messages": []map[string]any{{"role": "user", "content": prompt}}})
	post := func(key string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Choices []struct{ Message struct{ Content string } }
		}
		json.NewDecoder(resp.Body).Decode(&out)
		if len(out.Choices) == 0 {
			return resp, ""
		}
		return resp, out.Choices[0].Message.Content
	}
	if resp, _ := post("nope"); resp.StatusCode != 401 {
		t.Errorf("wrong key: %d, want 401", resp.StatusCode)
	}
	resp, got := post("k3y")
	if resp.StatusCode != 200 || got+"\n" != want {
		t.Errorf("yai serve answered %d %q, yai generate printed %q", resp.StatusCode, got, want)
	}
	cancel()
	if c := <-exit; c != 0 {
		t.Errorf("exit %d after shutdown\n%s", c, stderr.String())
	}
	for _, line := range []string{"models: " + dir + ", owl", "API key required", "one generation at a time", "shutting down"} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("stderr lacks %q:\n%s", line, stderr.String())
		}
	}
}

func TestServeCommandErrors(t *testing.T) {
	dir := testmodel.Tiny(t, "micro")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "--model is required"},
		{[]string{"--model", dir, "--adapter", "just-a-dir"}, 2, "NAME=DIR"},
		{[]string{"--model", dir, "--port", "70000"}, 2, "--port must be in [0, 65535]"},
		{[]string{"--model", dir, "--memory-limit", "lots"}, 2, "--memory-limit"},
		{[]string{"--model", dir, "--max-body", "0"}, 2, "--max-body"},
		{[]string{"--model", dir, "extra"}, 2, "unexpected arguments"},
		{[]string{"--model", dir, "--adapter", "owl=" + t.TempDir()}, 1, "adapter_config.json"},
	}
	for _, c := range cases {
		var stderr syncBuffer
		code := serveMain(context.Background(), c.args, &stderr, nil)
		if code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, stderr.String(), c.code, c.want)
		}
	}
}
