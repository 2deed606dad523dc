package generate

import (
	"strings"
	"testing"

	"github.com/yai-dev/yai/mlx"
)

// A chat keeps its history through the template (each prompt starts with the previous
// one's text), and every turn gives back all it allocated: live arrays and MLX active
// memory return to the same figures after each turn.
func TestChatHistoryAndMemory(t *testing.T) {
	l := mustLoad(t, tinyModel(t, "tiny"), "")
	defer l.Free()
	c := &Chat{Loaded: l, System: "You are terse.", Options: Options{MaxTokens: 10, Stop: l.Tokenizer.EOS()}}
	var live []int64
	var active []uint64
	var prev string
	for i, u := range []string{"one", "two", "three", "four", "five"} {
		ids, err := c.Prompt(u)
		if err != nil {
			t.Fatal(err)
		}
		text := l.Tokenizer.Decode(ids, false)
		if !strings.HasPrefix(text, prev) || !strings.Contains(text, "You are terse.") {
			t.Fatalf("turn %d prompt does not extend the last one:\n%q\n%q", i, prev, text)
		}
		reply, _, err := c.Send(u, func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		prev = text
		if len(c.Messages()) != 2*(i+1) || c.Messages()[2*i+1]["content"] != reply {
			t.Fatalf("history after turn %d: %v", i, c.Messages())
		}
		mlx.Do(func() error { active = append(active, mlx.Memory().Active); return nil })
		live = append(live, mlx.LiveArrays())
	}
	for i := range live {
		if live[i] != live[0] || active[i] != active[0] {
			t.Errorf("after turn %d: %d live arrays, %d bytes active; after turn 0: %d, %d", i, live[i], active[i], live[0], active[0])
		}
	}
	c.Reset()
	if len(c.Messages()) != 0 {
		t.Errorf("Reset kept %v", c.Messages())
	}
}
