package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/yai-dev/yai/internal/testmodel"
)

// timing is one streamed request seen from the client: time to the first text, and
// generation tokens/s after it (mlx-lm's definition: the tokens after the first over the
// time since it).
type timing struct {
	ttft   time.Duration
	tokens int
	decode time.Duration // from the first text to the last
}

func streamTiming(tb testing.TB, url string, body map[string]any) timing {
	tb.Helper()
	b, _ := json.Marshal(body)
	start := time.Now()
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("%s: status %d", url, resp.StatusCode)
	}
	var t timing
	var first, last time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage *usage `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			tb.Fatal(err)
		}
		if c.Usage != nil {
			t.tokens = c.Usage.CompletionTokens
		}
		if len(c.Choices) > 0 && c.Choices[0].Text != "" {
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			last = now
		}
	}
	t.ttft, t.decode = first.Sub(start), last.Sub(first)
	return t
}

// yai serve and mlx_lm.server (its own process) on the same tiny model, one streamed greedy
// completion each per iteration, interleaved: time to first token and generation tokens/s of
// both, and their ratios (yai / mlx_lm), as a client sees them. Each prompt differs, so
// mlx_lm.server's prompt cache does not skip the prefill.
func BenchmarkServeAgainstMLXLMServer(b *testing.B) {
	dir := testmodel.Tiny(b, "tiny")
	srv, err := New(Config{ModelDir: dir, ModelID: "tiny"})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer func() { hs.Close(); srv.Close() }()
	ref := startMLXLMServer(b, dir)
	const maxNew = 64
	body := func(i int) map[string]any {
		return map[string]any{"prompt": fmt.Sprintf("%d. Tell me about the blue owl and the lark that sings at dawn.", i),
			"max_tokens": maxNew, "temperature": 0, "stream": true, "stream_options": map[string]any{"include_usage": true}}
	}
	// One request each first: loading and compiling are not what is measured.
	streamTiming(b, hs.URL+"/v1/completions", body(-1))
	streamTiming(b, ref+"/v1/completions", body(-1))
	var ours, theirs timing
	b.ResetTimer()
	for i := range b.N {
		o := streamTiming(b, hs.URL+"/v1/completions", body(i))
		r := streamTiming(b, ref+"/v1/completions", body(i))
		if o.tokens != r.tokens {
			b.Fatalf("request %d: yai serve generated %d tokens, mlx_lm.server %d", i, o.tokens, r.tokens)
		}
		for _, p := range []struct{ sum, one *timing }{{&ours, &o}, {&theirs, &r}} {
			p.sum.ttft += p.one.ttft
			p.sum.decode += p.one.decode
			p.sum.tokens += max(p.one.tokens-1, 0) // the tokens after the first
		}
	}
	n := float64(b.N)
	tps := func(t timing) float64 { return float64(t.tokens) / t.decode.Seconds() }
	b.ReportMetric(float64(ours.ttft.Microseconds())/1e3/n, "yai-ttft-ms")
	b.ReportMetric(float64(theirs.ttft.Microseconds())/1e3/n, "mlxlm-ttft-ms")
	b.ReportMetric(tps(ours), "yai-tok/s")
	b.ReportMetric(tps(theirs), "mlxlm-tok/s")
	b.ReportMetric(float64(ours.ttft)/float64(theirs.ttft), "ttft-ratio")
	b.ReportMetric(tps(ours)/tps(theirs), "tok/s-ratio")
	b.Logf("%d requests each, %d tokens after the first each side", b.N, ours.tokens)
}
