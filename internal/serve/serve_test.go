package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
)

const maxTokens = 24

// Greedy answers of both endpoints, streamed and not, for the base model and each adapter,
// are what yai generate prints for the same prompt and adapter; the adapters answer
// differently from the base model, so the adapter in use is the one asked for. The
// requests switch adapters back and forth.
func TestServeMatchesGenerate(t *testing.T) {
	f := newFixture(t, Config{})
	const user = "Tell me about the blue owl."
	seen := map[string]string{}
	for _, model := range []string{"owl", "micro", "lark", "owl", "micro"} {
		for _, chat := range []bool{true, false} {
			var want, path string
			var body map[string]any
			var ids []int32
			if chat {
				ids = f.chatIDs(t, user)
				path, body = "/v1/chat/completions", map[string]any{"model": model, "max_tokens": maxTokens,
					"messages": []map[string]any{{"role": "user", "content": user}}}
			} else {
				ids = f.rawIDs(user)
				path, body = "/v1/completions", map[string]any{"model": model, "max_tokens": maxTokens, "prompt": user}
			}
			want = f.want(t, model, ids, maxTokens)
			for _, stream := range []bool{false, true} {
				body["stream"] = stream
				if stream {
					body["stream_options"] = map[string]any{"include_usage": true}
				} else {
					delete(body, "stream_options")
				}
				a := f.post(t, path, "", body)
				what := fmt.Sprintf("%s %s stream=%v", model, path, stream)
				if a.status != 200 || a.text != want {
					t.Errorf("%s: status %d, text %q, want %q (%s)", what, a.status, a.text, want, a.raw)
				}
				if a.usage == nil || a.usage.PromptTokens != len(ids) || a.usage.CompletionTokens < 1 ||
					a.usage.TotalTokens != a.usage.PromptTokens+a.usage.CompletionTokens {
					t.Errorf("%s: usage %+v, want %d prompt tokens", what, a.usage, len(ids))
				}
				if a.finish != "length" && a.finish != "stop" {
					t.Errorf("%s: finish_reason %q", what, a.finish)
				}
				if stream && (len(a.events) < 3 || a.events[len(a.events)-1] != "[DONE]") {
					t.Errorf("%s: events %q, want chunks ending with [DONE]", what, a.events)
				}
			}
			seen[fmt.Sprint(model, chat)] = want
		}
	}
	for _, chat := range []bool{true, false} {
		b, o, l := seen[fmt.Sprint("micro", chat)], seen[fmt.Sprint("owl", chat)], seen[fmt.Sprint("lark", chat)]
		if b == o || b == l || o == l {
			t.Errorf("chat=%v: base %q, owl %q, lark %q: adapters must answer differently for the test to prove anything", chat, b, o, l)
		}
	}
	t.Logf("chat answers: base %q, owl %q", seen["microtrue"], seen["owltrue"])
	// mlx_lm.server's adapters field names an adapter too (by name, never a path).
	a := f.post(t, "/v1/completions", "", map[string]any{"adapters": "lark", "prompt": user, "max_tokens": maxTokens})
	if want := f.want(t, "lark", f.rawIDs(user), maxTokens); a.text != want {
		t.Errorf("adapters: lark: %q, want %q", a.text, want)
	}
	// The streamed chat starts with the role, ends with an empty delta and the reason.
	a = f.post(t, "/v1/chat/completions", "", map[string]any{"stream": true, "max_tokens": 4,
		"messages": []map[string]any{{"role": "user", "content": user}}})
	var first, last struct {
		Object  string
		Choices []struct {
			Delta        map[string]any
			FinishReason *string `json:"finish_reason"`
		}
	}
	json.Unmarshal([]byte(a.events[0]), &first)
	json.Unmarshal([]byte(a.events[len(a.events)-2]), &last)
	if first.Object != "chat.completion.chunk" || first.Choices[0].Delta["role"] != "assistant" ||
		len(last.Choices[0].Delta) != 0 || last.Choices[0].FinishReason == nil {
		t.Errorf("stream events %q: want a first chunk naming the role and a last one with an empty delta and finish_reason", a.events)
	}
	// GET /v1/models lists the base model and the adapters.
	resp, err := http.Get(f.http.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var list modelList
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "micro,owl,lark" || list.Object != "list" {
		t.Errorf("/v1/models: %+v", list)
	}
}

// Stop strings end the text before them (the stop text is not returned), streamed or not,
// even when a stop string spans tokens.
func TestServeStopStrings(t *testing.T) {
	f := newFixture(t, Config{})
	const user = "Tell me about the blue owl."
	full := f.want(t, "owl", f.rawIDs(user), maxTokens)
	if len([]rune(full)) < 8 {
		t.Fatalf("reference %q too short", full)
	}
	runes := []rune(full)
	stop := string(runes[4:7])
	want := full[:strings.Index(full, stop)]
	for _, stream := range []bool{false, true} {
		for _, st := range []any{stop, []string{"\x00never", stop}} {
			a := f.post(t, "/v1/completions", "", map[string]any{"model": "owl", "prompt": user, "max_tokens": maxTokens, "stop": st, "stream": stream})
			if a.text != want || a.finish != "stop" {
				t.Errorf("stop %q stream=%v: %q (%s), want %q (stop)", st, stream, a.text, a.finish, want)
			}
		}
	}
	t.Logf("full %q, stop %q", full, stop)
}

func TestStopCutter(t *testing.T) {
	cases := []struct {
		stops  []string
		pieces []string
		want   string
		stop   bool
	}{
		{nil, []string{"ab", "cd"}, "abcd", false},
		{[]string{"cd"}, []string{"ab", "c", "d", "ef"}, "ab", true},
		{[]string{"xyz"}, []string{"abx", "y", "q"}, "abxyq", false},
		{[]string{"yz", "bx"}, []string{"ab", "xyz"}, "a", true},
		{[]string{"é"}, []string{"caf", "é!"}, "caf", true},
	}
	for _, c := range cases {
		cut := newStopCutter(c.stops)
		var got strings.Builder
		stopped := false
		for _, p := range c.pieces {
			text, s := cut.add(p)
			got.WriteString(text)
			if s {
				stopped = true
				break
			}
		}
		if !stopped {
			got.WriteString(cut.flush())
		}
		if got.String() != c.want || stopped != c.stop {
			t.Errorf("stops %q pieces %q: %q (stop %v), want %q (stop %v)", c.stops, c.pieces, got.String(), stopped, c.want, c.stop)
		}
	}
}

// Every malformed or unsupported request gets an OpenAI error object with the right status
// and nothing is generated; the server keeps answering.
func TestServeErrors(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 64 << 10})
	msgs := []map[string]any{{"role": "user", "content": "hi"}}
	long := strings.Repeat("owl ", 600) // past micro's context of 512
	cases := []struct {
		path   string
		body   any
		status int
		param  string
		has    string
	}{
		{"/v1/chat/completions", map[string]any{"model": "eagle", "messages": msgs}, 404, "model", "micro, owl, lark"},
		{"/v1/completions", map[string]any{"model": "eagle", "prompt": "hi"}, 404, "model", "micro, owl, lark"},
		{"/v1/completions", map[string]any{"adapters": "/etc", "prompt": "hi"}, 404, "adapters", "micro, owl, lark"},
		{"/v1/completions", map[string]any{"model": "owl", "adapters": "lark", "prompt": "hi"}, 400, "adapters", "name one"},
		{"/v1/chat/completions", []byte(`{"messages": [`), 400, "", "parse"},
		{"/v1/chat/completions", []byte(`{"messages": []} {}`), 400, "", "trailing"},
		{"/v1/chat/completions", []byte(``), 400, "", "empty"},
		{"/v1/chat/completions", []byte(`[1, 2]`), 400, "", "JSON object"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "temperature": "hot"}, 400, "temperature", "Invalid type"},
		{"/v1/chat/completions", map[string]any{"messages": "hi"}, 400, "messages", "Invalid type"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "max_tokens": 1.5}, 400, "max_tokens", "integer"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "frobnicate": true}, 400, "frobnicate", "Unrecognized request argument"},
		{"/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi", "x": 1}}}, 400, "x", "Unrecognized"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "stop": 3}, 400, "stop", "string"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "stop": ""}, 400, "stop", "empty"},
		{"/v1/chat/completions", map[string]any{"messages": []map[string]any{}}, 400, "messages", "at least one"},
		{"/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "wizard", "content": "hi"}}}, 400, "messages.[0].role", "wizard"},
		{"/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": []map[string]any{{"type": "image_url"}}}}}, 400, "messages.[0].content", "only text"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "logprobs": true}, 400, "logprobs", "not supported"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "top_logprobs": 2}, 400, "top_logprobs", "not supported"},
		{"/v1/completions", map[string]any{"prompt": "hi", "logprobs": 1}, 400, "logprobs", "not supported"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "n": 2}, 400, "n", "n must be 1"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "tool_choice": "required"}, 400, "tool_choice", "auto"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "temperature": -1}, 400, "temperature", "at least 0"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "top_p": 2}, 400, "top_p", "[0, 1]"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "max_tokens": 0}, 400, "max_tokens", "at least 1"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "presence_penalty": 0.5}, 400, "presence_penalty", "not supported"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "stream_options": map[string]any{"include_usage": true}}, 400, "stream_options", "stream is true"},
		{"/v1/completions", map[string]any{"prompt": long}, 400, "prompt", "maximum context length is 512"},
		{"/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": long}}, "stream": true}, 400, "messages", "context length"},
		{"/v1/completions", map[string]any{"prompt": []int{5, 99999}}, 400, "prompt", "vocabulary"},
		{"/v1/completions", map[string]any{"prompt": []string{"a", "b"}}, 400, "prompt", "one prompt per request"},
		{"/v1/completions", map[string]any{}, 400, "prompt", "required"},
		{"/v1/completions", map[string]any{"prompt": strings.Repeat("x", 70<<10)}, 413, "", "limit"},
		{"/v1/embeddings", map[string]any{"input": "x"}, 404, "", "Unknown request URL"},
	}
	for _, c := range cases {
		a := f.post(t, c.path, "", c.body)
		e := a.err
		param := ""
		if e != nil && e.Param != nil {
			param = *e.Param
		}
		if a.status != c.status || e == nil || e.Type == "" || param != c.param || !strings.Contains(e.Message, c.has) {
			t.Errorf("%s %v: status %d, %s; want %d, param %q, a message with %q", c.path, c.body, a.status, a.raw, c.status, c.param, c.has)
		}
	}
	// A GET where a POST is wanted, and the server still answers after all of it.
	resp, err := http.Get(f.http.URL + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/chat/completions: %d, want 405", resp.StatusCode)
	}
	if a := f.post(t, "/v1/completions", "", map[string]any{"prompt": "hi", "max_tokens": 2}); a.status != 200 {
		t.Errorf("after the errors: %d %s", a.status, a.raw)
	}
}

// With a key, every /v1 request needs it as a bearer token; /health does not.
func TestServeAuth(t *testing.T) {
	f := newFixture(t, Config{APIKey: "sesame"})
	body := map[string]any{"prompt": "hi", "max_tokens": 2}
	for _, key := range []string{"", "sesam", "sesame2", "SESAME"} {
		a := f.post(t, "/v1/completions", key, body)
		if a.status != 401 || a.err == nil || a.err.Code == nil || *a.err.Code != "invalid_api_key" {
			t.Errorf("key %q: %d %s, want 401 invalid_api_key", key, a.status, a.raw)
		}
	}
	if a := f.post(t, "/v1/completions", "sesame", body); a.status != 200 {
		t.Errorf("right key: %d %s", a.status, a.raw)
	}
	for path, want := range map[string]int{"/v1/models": 401, "/health": 200} {
		resp, err := http.Get(f.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a key: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// A client that goes away mid-stream stops its generation at once: it ends cancelled after
// a few tokens of the many it asked for, the next request gets its full answer, and memory
// is back where it started.
func TestServeCancelMidStream(t *testing.T) {
	f := newFixture(t, Config{})
	type end struct {
		o   outcome
		err error
	}
	ends := make(chan end, 4)
	f.srv.finished = func(o outcome, err error) { ends <- end{o, err} }
	const user = "Tell me about the blue owl."
	warm := f.post(t, "/v1/completions", "", map[string]any{"prompt": user, "max_tokens": 4})
	<-ends
	base := memoryNow()

	const asked = 5000
	ctx, cancel := context.WithCancel(context.Background())
	body := fmt.Sprintf(`{"model": "owl", "prompt": %q, "max_tokens": %d, "stream": true}`, user, asked)
	req, _ := http.NewRequestWithContext(ctx, "POST", f.http.URL+"/v1/completions", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for events := 0; events < 3 && sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	cancel()
	resp.Body.Close()
	e := <-ends
	if e.err == nil || !strings.Contains(e.err.Error(), "context canceled") || e.o.completionTokens >= asked {
		t.Errorf("the cancelled generation ended with %v after %d of %d tokens: want context canceled, early", e.err, e.o.completionTokens, asked)
	}
	t.Logf("cancelled after %d tokens", e.o.completionTokens)
	next := f.post(t, "/v1/completions", "", map[string]any{"prompt": user, "max_tokens": 4})
	<-ends
	if next.status != 200 || next.text != warm.text {
		t.Errorf("the request after the cancelled one: %d %q, want %q", next.status, next.text, warm.text)
	}
	if got := memoryNow(); got != base {
		t.Errorf("memory after the cancelled stream: %+v, before it %+v", got, base)
	}
	// A request cancelled while it waits in the queue leaves it without generating.
	f.srv.turn <- struct{}{} // hold the turn
	qctx, qcancel := context.WithCancel(context.Background())
	qreq, _ := http.NewRequestWithContext(qctx, "POST", f.http.URL+"/v1/completions", strings.NewReader(`{"prompt": "hi"}`))
	done := make(chan error, 1)
	go func() {
		r, err := http.DefaultClient.Do(qreq)
		if err == nil {
			r.Body.Close()
		}
		done <- err
	}()
	qcancel()
	<-done
	<-f.srv.turn
	if a := f.post(t, "/v1/completions", "", map[string]any{"prompt": user, "max_tokens": 4}); a.text != warm.text {
		t.Errorf("after a request cancelled in the queue: %q", a.text)
	}
	if e := <-ends; e.err != nil || e.o.promptTokens != len(f.rawIDs(user)) {
		t.Errorf("the queued request generated, or the next one failed: %+v", e)
	}
}

// 16 clients at once, each sending requests over every model and both endpoints, streamed
// and not: every answer is the one a lone request gets, and memory returns to its start.
func TestServeConcurrentClients(t *testing.T) {
	f := newFixture(t, Config{})
	n := testenv.Size(t, "requests per client", 3, 100)
	users := []string{"Tell me about the blue owl.", "Where do larks sing?", "Count to three."}
	models := []string{"micro", "owl", "lark"}
	type reqSpec struct {
		model, user  string
		chat, stream bool
	}
	spec := func(c, i int) reqSpec {
		k := c*7 + i*3
		return reqSpec{models[k%3], users[(k/3)%3], (c+i)%2 == 0, (c/2+i)%2 == 0}
	}
	wantOf := func(s reqSpec) string {
		ids := f.rawIDs(s.user)
		if s.chat {
			ids = f.chatIDs(t, s.user)
		}
		return f.want(t, s.model, ids, 12)
	}
	// The expected answers, and one request to warm up, before counting memory.
	for _, m := range models {
		for _, u := range users {
			for _, chat := range []bool{false, true} {
				wantOf(reqSpec{m, u, chat, false})
			}
		}
	}
	f.post(t, "/v1/completions", "", map[string]any{"prompt": "hi", "max_tokens": 2})
	base := memoryNow()
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				s := spec(c, i)
				body := map[string]any{"model": s.model, "max_tokens": 12, "stream": s.stream}
				path := "/v1/completions"
				if s.chat {
					path = "/v1/chat/completions"
					body["messages"] = []map[string]any{{"role": "user", "content": s.user}}
				} else {
					body["prompt"] = s.user
				}
				a := f.post(t, path, "", body)
				if want := wantOf(s); a.status != 200 || a.text != want {
					mu.Lock()
					bad++
					mu.Unlock()
					t.Errorf("client %d request %d %+v: %d %q, want %q", c, i, s, a.status, a.text, want)
				}
			}
		}()
	}
	wg.Wait()
	if got := memoryNow(); got != base {
		t.Errorf("memory after %d requests: %+v, before %+v", 16*n, got, base)
	}
	t.Logf("%d requests from 16 clients, %d wrong", 16*n, bad)
}

// Many requests in a row leave live arrays and MLX's active memory where they were after
// the first: each request's caches are freed when it ends.
func TestServeMemoryFlat(t *testing.T) {
	f := newFixture(t, Config{})
	n := testenv.Size(t, "requests", 200, 1000)
	body := func(i int) map[string]any {
		return map[string]any{"model": []string{"micro", "owl", "lark"}[i%3], "prompt": fmt.Sprintf("Request %d: tell me about owls.", i),
			"max_tokens": 8, "stream": i%2 == 0}
	}
	f.post(t, "/v1/completions", "", body(0))
	base := memoryNow()
	var worst memory
	for i := range n {
		if a := f.post(t, "/v1/completions", "", body(i)); a.status != 200 {
			t.Fatalf("request %d: %d %s", i, a.status, a.raw)
		}
		m := memoryNow()
		worst.arrays = max(worst.arrays, m.arrays)
		worst.active = max(worst.active, m.active)
		if m != base {
			t.Fatalf("after request %d: %+v, at the start %+v", i, m, base)
		}
	}
	t.Logf("%d requests: live arrays %d, active %d bytes throughout (worst %+v)", n, base.arrays, base.active, worst)
}

// A panic while serving a request is a 500 with an OpenAI error for that request alone: the
// turn is given back and the next request is answered.
func TestServeRecoversFromAPanic(t *testing.T) {
	f := newFixture(t, Config{})
	f.srv.finished = func(outcome, error) { panic("boom") }
	a := f.post(t, "/v1/completions", "", map[string]any{"prompt": "hi", "max_tokens": 2})
	if a.status != 500 || a.err == nil || !strings.Contains(a.err.Message, "boom") || a.err.Type != "server_error" {
		t.Errorf("panicking request: %d %s, want a 500 server_error", a.status, a.raw)
	}
	f.srv.finished = nil
	if a := f.post(t, "/v1/completions", "", map[string]any{"prompt": "hi", "max_tokens": 2}); a.status != 200 {
		t.Errorf("the request after the panic: %d %s", a.status, a.raw)
	}
}
