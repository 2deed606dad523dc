package stages

import (
	"context"
	"log/slog"
	"strings"

	"github.com/yai-dev/yai/stages/stage"
)

// LogConfig configures a log line.
type LogConfig struct {
	Message string   `yaml:"message" default:"progress" doc:"the log message"`
	Level   string   `yaml:"level" default:"info" enum:"debug,info,warn,error" doc:"slog level"`
	Figures []string `yaml:"figures" default:"step,loss,mlx.active,mlx.peak,mlx.cache,growth" enum:"@figures" doc:"trigger names whose values the line carries"`
}

// Log writes chosen figures as one structured line.
var Log = Define(Def[LogConfig]{
	Name:    "log",
	Summary: "log chosen figures (memory, loss, growth) as one structured line",
	Doc: "Writes one slog line with the named figures; byte figures are printed with units. " +
		"Every step already has a metrics.jsonl line; use log for what a person should see.",
	Events:     []stage.Event{stage.AfterStep, stage.BeforeStep, stage.OnStep, stage.OnEval, stage.Setup, stage.Teardown},
	ResumeSafe: true,
	Build:      buildLog,
})

func buildLog(c *LogConfig) (stage.Stage, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(c.Level))); err != nil {
		return nil, err
	}
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		attrs := make([]slog.Attr, 0, len(c.Figures))
		for _, name := range c.Figures {
			v, ok := s.Figures.Figure(name)
			switch {
			case !ok:
				continue
			case stage.FigureUnit(name) == "bytes":
				attrs = append(attrs, slog.String(name, Bytes(v).String()))
			case stage.FigureUnit(name) == "bytes/step":
				attrs = append(attrs, slog.String(name, signedBytes(v)+"/step"))
			default:
				attrs = append(attrs, slog.Float64(name, v))
			}
		}
		s.Log.LogAttrs(ctx, level, c.Message, attrs...)
		return nil
	}), nil
}

func signedBytes(v float64) string {
	if v < 0 {
		return "-" + Bytes(-v).String()
	}
	return Bytes(v).String()
}
