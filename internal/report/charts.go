package report

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/yai-dev/yai/internal/rundir"
)

// Chart size: 10 × 6 inches at 96 dots per inch, 960 × 576 pixels.
const (
	ChartWidth  = 10 * vg.Inch
	ChartHeight = 6 * vg.Inch
	ChartDPI    = 96
)

// Chart file names.
const (
	LossChart   = "loss.png"
	MemoryChart = "memory.png"
)

var (
	limitColor = color.RGBA{R: 40, G: 40, B: 40, A: 255}
	// runColors tell runs apart; red is left to the guard markers.
	runColors = []color.Color{
		color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 255, G: 127, B: 14, A: 255},
		color.RGBA{R: 44, G: 160, B: 44, A: 255}, color.RGBA{R: 148, G: 103, B: 189, A: 255},
		color.RGBA{R: 140, G: 86, B: 75, A: 255}, color.RGBA{R: 23, G: 190, B: 207, A: 255},
	}
	// Dash patterns of the memory figures, the same for every run.
	activeDashes = []vg.Length(nil)
	peakDashes   = []vg.Length{vg.Points(6), vg.Points(3)}
	cacheDashes  = []vg.Length{vg.Points(1.5), vg.Points(2)}
	rssDashes    = []vg.Length{vg.Points(8), vg.Points(3), vg.Points(1.5), vg.Points(3)}
	eventGlyphs  = map[string]draw.GlyphDrawer{
		ClearCache: draw.CircleGlyph{}, Reload: draw.TriangleGlyph{}, Guard: draw.CrossGlyph{}, Checkpoint: draw.BoxGlyph{},
		OverLimit: draw.PyramidGlyph{},
	}
	eventColors = map[string]color.Color{
		ClearCache: color.RGBA{R: 0, G: 90, B: 160, A: 255}, Reload: color.RGBA{R: 200, G: 120, A: 255},
		Guard: color.RGBA{R: 220, A: 255}, Checkpoint: color.RGBA{R: 20, G: 120, B: 20, A: 255},
		OverLimit: color.RGBA{R: 170, B: 140, A: 255},
	}
)

// WriteCharts draws loss.png and memory.png for runs into dir.
func WriteCharts(dir string, runs []*rundir.Run) error {
	loss, err := lossPlot(runs)
	if err != nil {
		return err
	}
	if err := save(loss, filepath.Join(dir, LossChart)); err != nil {
		return err
	}
	mem, err := memoryPlot(runs)
	if err != nil {
		return err
	}
	return save(mem, filepath.Join(dir, MemoryChart))
}

func save(p *plot.Plot, path string) error {
	c := vgimg.NewWith(vgimg.UseWH(ChartWidth, ChartHeight), vgimg.UseDPI(ChartDPI))
	p.Draw(draw.New(c))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

func newPlot(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(8)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	return p
}

// label names a series, prefixed by the run when several runs share the chart.
func label(runs []*rundir.Run, r *rundir.Run, what string) string {
	if len(runs) == 1 {
		return what
	}
	return r.Name + ": " + what
}

// headroom is how much to stretch the y axis so a legend of n lines sits above the data.
func headroom(n int) float64 { return 1 + 0.045*float64(n) }

func lossPlot(runs []*rundir.Run) (*plot.Plot, error) {
	p := newPlot("Loss per step", "loss")
	for i, r := range runs {
		var train, val plotter.XYs
		for _, s := range r.Steps {
			train = append(train, plotter.XY{X: float64(s.Step), Y: float64(s.Loss)})
			if s.ValLoss != nil {
				val = append(val, plotter.XY{X: float64(s.Step), Y: *s.ValLoss})
			}
		}
		c := runColors[i%len(runColors)]
		if len(train) > 0 {
			l, err := plotter.NewLine(train)
			if err != nil {
				return nil, err
			}
			l.Color = c
			p.Add(l)
			p.Legend.Add(label(runs, r, "loss"), l)
		}
		if len(val) > 0 {
			l, pts, err := plotter.NewLinePoints(val)
			if err != nil {
				return nil, err
			}
			l.Color, l.Dashes = c, peakDashes
			pts.Color, pts.Shape = c, draw.CircleGlyph{}
			p.Add(l, pts)
			p.Legend.Add(label(runs, r, "val_loss"), l, pts)
		}
	}
	p.Y.Max = p.Y.Min + (p.Y.Max-p.Y.Min)*headroom(2*len(runs))
	return p, nil
}

// memoryUnit picks GB or MB for the largest figure.
func memoryUnit(runs []*rundir.Run) (float64, string) {
	var top int64
	for _, r := range runs {
		for _, s := range r.Steps {
			top = max(top, s.MLXPeak, s.RSSBytes(), s.Limit)
		}
	}
	if top >= 1e9 {
		return 1e9, "GB"
	}
	return 1e6, "MB"
}

func memoryPlot(runs []*rundir.Run) (*plot.Plot, error) {
	unit, name := memoryUnit(runs)
	p := newPlot("Memory per step", name)
	figures := []struct {
		what   string
		dashes []vg.Length
		value  func(rundir.Metrics) int64
	}{
		{"MLX active", activeDashes, func(s rundir.Metrics) int64 { return s.MLXActive }},
		{"MLX peak", peakDashes, func(s rundir.Metrics) int64 { return s.MLXPeak }},
		{"MLX cache", cacheDashes, func(s rundir.Metrics) int64 { return s.MLXCache }},
		{"RSS", rssDashes, func(s rundir.Metrics) int64 { return s.RSSBytes() }},
	}
	thresholds := map[string]float64{} // label → bytes, each drawn once
	events := map[string]plotter.XYs{}
	for i, r := range runs {
		if len(r.Steps) == 0 {
			continue
		}
		c := runColors[i%len(runColors)]
		for _, f := range figures {
			if f.what == "RSS" && r.Steps[0].RSS == nil {
				continue // the platform gave no RSS: no line rather than a line at zero
			}
			xys := make(plotter.XYs, len(r.Steps))
			for j, s := range r.Steps {
				xys[j] = plotter.XY{X: float64(s.Step), Y: float64(f.value(s)) / unit}
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return nil, err
			}
			l.Color, l.Dashes = c, f.dashes
			p.Add(l)
			p.Legend.Add(label(runs, r, f.what), l)
		}
		limit := r.Steps[len(r.Steps)-1].Limit
		if limit > 0 {
			thresholds[fmt.Sprintf("limit %.3g %s", float64(limit)/unit, name)] = float64(limit)
		}
		if b := r.Recipe.GuardBuffer; b != nil {
			guardLimit := limit
			if r.Recipe.GuardLimit > 0 {
				guardLimit = r.Recipe.GuardLimit
			}
			if guardLimit > 0 {
				t := float64(guardLimit) * (1 + *b)
				thresholds[fmt.Sprintf("guard threshold: limit × %.3g = %.3g %s", 1+*b, t/unit, name)] = t
			}
		}
		for _, e := range Events(r) {
			events[e.Kind] = append(events[e.Kind], plotter.XY{X: float64(e.Step), Y: float64(e.At) / unit})
		}
	}
	for text, bytes := range thresholds {
		y := bytes / unit
		fn := plotter.NewFunction(func(float64) float64 { return y })
		fn.Color, fn.Width = limitColor, vg.Points(1.2)
		if text[0] == 'g' {
			fn.Dashes = peakDashes
		}
		p.Add(fn)
		p.Legend.Add(text, fn)
	}
	for _, kind := range EventKinds {
		xys := events[kind]
		if len(xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, err
		}
		sc.Shape, sc.Color, sc.Radius = eventGlyphs[kind], eventColors[kind], vg.Points(4)
		p.Add(sc)
		p.Legend.Add(kind, sc)
	}
	// Keep the threshold lines in view even when memory stays far below them, and leave
	// the top of the chart to the legend.
	p.Y.Min = 0
	for _, bytes := range thresholds {
		p.Y.Max = max(p.Y.Max, bytes/unit)
	}
	p.Y.Max *= headroom(len(figures)*len(runs) + len(thresholds) + len(events))
	return p, nil
}
