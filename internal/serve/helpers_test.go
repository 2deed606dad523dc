package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/mlx"
)

// fixture is a server over the micro model with two adapters, and what yai generate
// answers on the same model, for comparison.
type fixture struct {
	dir      string
	adapters map[string]string // name → directory
	srv      *Server
	http     *httptest.Server

	mu   sync.Mutex
	refs map[string]*generate.Loaded // adapter name ("" base) → its own loaded model
	memo map[string]string
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	dir := testmodel.Tiny(t, "micro")
	f := &fixture{dir: dir, adapters: map[string]string{
		"owl":  testmodel.RandomAdapter(t, dir, 11, 0.3),
		"lark": testmodel.RandomAdapter(t, dir, 12, 0.3),
	}, refs: map[string]*generate.Loaded{}, memo: map[string]string{}}
	cfg.ModelDir, cfg.ModelID = dir, "micro"
	cfg.Adapters = []Adapter{{Name: "owl", Path: f.adapters["owl"]}, {Name: "lark", Path: f.adapters["lark"]}}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.http = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		f.http.Close()
		srv.Close()
		for _, l := range f.refs {
			l.Free()
		}
	})
	return f
}

// want is yai generate's greedy text for the prompt ids on model (base or adapter name),
// decoded through the text stream as yai generate prints it.
func (f *fixture) want(t testing.TB, modelName string, ids []int32, maxTokens int) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	key := fmt.Sprint(modelName, ids, maxTokens)
	if s, ok := f.memo[key]; ok {
		return s
	}
	name := modelName
	if name == "micro" {
		name = ""
	}
	l := f.refs[name]
	if l == nil {
		var err error
		if l, err = generate.Load(f.dir, f.adapters[name]); err != nil {
			t.Fatal(err)
		}
		f.refs[name] = l
	}
	stream := generate.NewTextStream(l.Tokenizer)
	var b strings.Builder
	_, err := generate.Generate(l.Model, ids, generate.Options{MaxTokens: maxTokens, Stop: l.Tokenizer.EOS()}, func(tok int32) error {
		b.WriteString(stream.Add(tok))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString(stream.Flush())
	f.memo[key] = b.String()
	return b.String()
}

func (f *fixture) chatIDs(t testing.TB, user string) []int32 {
	t.Helper()
	ids, err := generate.ChatTokens(f.srv.tok, []tokenizer.Message{{"role": "user", "content": user}})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (f *fixture) rawIDs(text string) []int32 { return f.srv.tok.Encode(text, true) }

// answer is what a request got: the text (the deltas joined when streamed), finish reason,
// usage, and for streams the events.
type answer struct {
	status int
	text   string
	finish string
	usage  *usage
	events []string
	err    *apiError
	raw    string
}

// post sends body to path with the key (if any) and reads the answer, streamed or not.
func (f *fixture) post(t testing.TB, path, key string, body any) answer {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest("POST", f.http.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()
	return readAnswer(t, resp)
}

func readAnswer(t testing.TB, resp *http.Response) answer {
	t.Helper()
	a := answer{status: resp.StatusCode}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		var text strings.Builder
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, ":") { // a blank line ends an event; ':' starts a comment
				continue
			}
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				t.Errorf("stream line %q is not a data line", line)
				continue
			}
			a.events = append(a.events, data)
			if data == "[DONE]" {
				continue
			}
			var c struct {
				Choices []struct {
					Text  *string `json:"text"`
					Delta *struct {
						Content *string `json:"content"`
					} `json:"delta"`
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
				Usage *usage    `json:"usage"`
				Error *apiError `json:"error"`
			}
			if err := json.Unmarshal([]byte(data), &c); err != nil {
				t.Errorf("stream event %q: %v", data, err)
				continue
			}
			if c.Error != nil {
				a.err = c.Error
			}
			if c.Usage != nil {
				a.usage = c.Usage
			}
			for _, ch := range c.Choices {
				if ch.Text != nil {
					text.WriteString(*ch.Text)
				}
				if ch.Delta != nil && ch.Delta.Content != nil {
					text.WriteString(*ch.Delta.Content)
				}
				if ch.FinishReason != nil {
					a.finish = *ch.FinishReason
				}
			}
		}
		a.text = text.String()
		return a
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	a.raw = string(raw)
	var body struct {
		Choices []struct {
			Text    *string `json:"text"`
			Message *struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *usage    `json:"usage"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Errorf("answer %q is not JSON: %v", raw, err)
		return a
	}
	a.err, a.usage = body.Error, body.Usage
	for _, ch := range body.Choices {
		if ch.Text != nil {
			a.text = *ch.Text
		}
		if ch.Message != nil {
			a.text = ch.Message.Content
		}
		a.finish = ch.FinishReason
	}
	return a
}

// memory is what must come back after requests: live arrays and MLX's active bytes.
type memory struct {
	arrays int64
	active uint64
}

func memoryNow() memory { return memory{mlx.LiveArrays(), mlx.Memory().Active} }
