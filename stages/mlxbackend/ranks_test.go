package mlxbackend

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/stages"
)

func TestRankStatusSurvivesTheWire(t *testing.T) {
	for _, s := range []stages.RankStatus{
		{},
		{Stop: 143, Checkpoint: true, Reason: "stopped by SIGTERM", Active: 1 << 40, Peak: 7, Cache: 3, RSS: 1<<62 + 5},
		{Stop: 3, Reason: strings.Repeat("é", 400)}, // cut to the wire's size
	} {
		b := encodeStatus(s)
		if len(b) != statusBytes {
			t.Fatalf("%d bytes", len(b))
		}
		got := decodeStatus(b)
		want := s
		if len(want.Reason) > reasonBytes {
			want.Reason = strings.Repeat("é", reasonBytes/2) // whole characters only
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("(-sent +received):\n%s", d)
		}
	}
}
