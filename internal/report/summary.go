package report

import (
	"fmt"
	"strings"

	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/stages"
)

// Summary is the short account of one run.
type Summary struct {
	Run          string             `json:"run"`
	Status       string             `json:"status"`
	Steps        int64              `json:"steps"`          // steps with a metrics line
	Tokens       int64              `json:"tokens"`         // trained tokens, all steps
	TokensPerSec float64            `json:"tokens_per_s"`   // Tokens over the last step's elapsed time
	Elapsed      float64            `json:"elapsed_s"`      // seconds from the first step's start to the last step's end
	FinalLoss    *float64           `json:"final_loss"`     // the last step's training loss
	FinalValLoss *float64           `json:"final_val_loss"` // the last validation loss reported
	PeakMLX      int64              `json:"peak_mlx"`       // highest MLX peak memory, bytes
	PeakActive   int64              `json:"peak_active"`    // highest MLX active memory at a step's end
	PeakRSS      int64              `json:"peak_rss"`       // highest resident set size
	Limit        int64              `json:"limit"`          // memory.limit, bytes
	Events       map[string]int     `json:"events"`         // memory events by kind
	EventSteps   map[string][]int64 `json:"event_steps"`    // their steps
	// OverLimit counts the steps whose MLX peak passed the limit; Worst is the one furthest
	// over (nil when none did).
	OverLimit int64                 `json:"over_limit_steps"`
	Worst     *rundir.OverLimitStep `json:"worst_over_limit"`
}

// Summarize computes r's summary from its metrics.
func Summarize(r *rundir.Run) Summary {
	s := Summary{Run: r.Name, Status: r.Status(), Events: map[string]int{}, EventSteps: map[string][]int64{}}
	for _, st := range r.Steps {
		s.Steps = st.Step
		s.Tokens += st.Tokens
		s.Elapsed = st.Elapsed
		loss := float64(st.Loss)
		s.FinalLoss = &loss
		if st.ValLoss != nil {
			v := *st.ValLoss
			s.FinalValLoss = &v
		}
		s.PeakMLX = max(s.PeakMLX, st.MLXPeak)
		s.PeakActive = max(s.PeakActive, st.MLXActive)
		s.PeakRSS = max(s.PeakRSS, st.RSSBytes())
		s.Limit = st.Limit
		if o, ok := st.OverLimit(); ok {
			s.OverLimit++
			if s.Worst == nil || o.Over() > s.Worst.Over() {
				s.Worst = &o
			}
		}
	}
	if s.Elapsed > 0 {
		s.TokensPerSec = float64(s.Tokens) / s.Elapsed
	}
	for _, e := range Events(r) {
		s.Events[e.Kind]++
		s.EventSteps[e.Kind] = append(s.EventSteps[e.Kind], e.Step)
	}
	return s
}

// Text is the summary as a few lines for a terminal.
func (s Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", s.Run, s.Status)
	fmt.Fprintf(&b, "  steps %d, tokens %d, %.1f tokens/s over %.1f s\n", s.Steps, s.Tokens, s.TokensPerSec, s.Elapsed)
	fmt.Fprintf(&b, "  final loss %s, final val_loss %s\n", optional(s.FinalLoss), optional(s.FinalValLoss))
	fmt.Fprintf(&b, "  peak memory: MLX peak %s, MLX active %s, RSS %s (limit %s)\n",
		stages.Bytes(s.PeakMLX), stages.Bytes(s.PeakActive), stages.Bytes(s.PeakRSS), stages.Bytes(s.Limit))
	var ev []string
	for _, k := range EventKinds {
		if n := s.Events[k]; n > 0 {
			ev = append(ev, fmt.Sprintf("%s ×%d (steps %s)", k, n, stepList(s.EventSteps[k])))
		}
	}
	if len(ev) == 0 {
		ev = []string{"none"}
	}
	fmt.Fprintf(&b, "  events: %s\n", strings.Join(ev, ", "))
	b.WriteString("  " + s.overLimitText() + "\n")
	return b.String()
}

// overLimitText says whether any step's MLX peak passed the limit, and the worst one.
func (s Summary) overLimitText() string {
	switch {
	case s.Worst != nil:
		return fmt.Sprintf("steps over the limit: %d (worst: step %d, MLX peak %s, %s over %s)",
			s.OverLimit, s.Worst.Step, stages.Bytes(s.Worst.MLXPeak), stages.Bytes(s.Worst.Over()), stages.Bytes(s.Worst.Limit))
	case s.Limit > 0:
		return fmt.Sprintf("steps over the limit: none (every MLX peak at most %s)", stages.Bytes(s.Limit))
	}
	return "steps over the limit: no limit was set"
}

func optional(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", *v)
}

// stepList shows up to six steps, then how many more.
func stepList(steps []int64) string {
	parts := make([]string, 0, 7)
	for i, s := range steps {
		if i == 6 {
			parts = append(parts, fmt.Sprintf("… %d more", len(steps)-6))
			break
		}
		parts = append(parts, fmt.Sprint(s))
	}
	return strings.Join(parts, " ")
}
