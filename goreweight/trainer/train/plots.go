package train

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/goreweight/goreweight/goreweight"
	"github.com/goreweight/goreweight/goreweight/trainer/data"
)

// Colours: one per strategy (the baseline first), one per document kind.
var (
	strategyColors = []color.Color{
		color.RGBA{0x55, 0x55, 0x55, 0xff}, // grey: the baseline
		color.RGBA{0xd6, 0x27, 0x28, 0xff}, // red
		color.RGBA{0x1f, 0x77, 0xb4, 0xff}, // blue
		color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, // green
		color.RGBA{0x94, 0x67, 0xbd, 0xff}, // purple
		color.RGBA{0xff, 0x7f, 0x0e, 0xff}, // orange
		color.RGBA{0x8c, 0x56, 0x4b, 0xff}, // brown
		color.RGBA{0xe3, 0x77, 0xc2, 0xff}, // pink
	}
	kindColors = map[string]color.Color{
		data.KindReal:      color.NRGBA{0x1f, 0x77, 0xb4, 0x90},
		data.KindDuplicate: color.NRGBA{0xff, 0x7f, 0x0e, 0xc0},
		data.KindNoise:     color.NRGBA{0xd6, 0x27, 0x28, 0xc0},
		data.KindEntropy:   color.NRGBA{0x2c, 0xa0, 0x2c, 0x90},
	}
)

const dpi = 110

// plotColor returns the colour of strategy i, the baseline being 0.
func plotColor(s *Summary, strategy string) color.Color {
	i := 1
	for _, r := range s.Runs {
		if r.Strategy == s.Baseline {
			continue
		}
		if r.Strategy == strategy {
			return strategyColors[i%len(strategyColors)]
		}
		i++
	}
	return strategyColors[0]
}

// writePlots writes the three PNGs and returns the names of those written.
// A plot that cannot be drawn is reported on warn and left out: the
// training results are in the other files.
func writePlots(cfg Config, e *env, s *Summary, results []runResult, warn io.Writer) ([]string, error) {
	var names []string
	for _, f := range []struct {
		name string
		fn   func(Config, *env, *Summary, []runResult) ([][]*plot.Plot, vg.Length, vg.Length, error)
	}{
		{plotValLoss, valLossPlots},
		{plotTemp, temperaturePlots},
		{plotWeightVL, weightLossPlots},
	} {
		err := drawPlot(cfg, e, s, results, f.name, f.fn)
		if err != nil {
			if warn != nil {
				fmt.Fprintf(warn, "goreweight-train: warning: %v\n", err)
			}
			continue
		}
		names = append(names, f.name)
	}
	return names, nil
}

// drawPlot makes and saves one plot; a panic in the plotting library
// becomes an error.
func drawPlot(cfg Config, e *env, s *Summary, results []runResult, name string,
	fn func(Config, *env, *Summary, []runResult) ([][]*plot.Plot, vg.Length, vg.Length, error)) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("train: plot %s: %v", name, p)
		}
	}()
	grid, w, h, err := fn(cfg, e, s, results)
	if err != nil {
		return fmt.Errorf("train: plot %s: %w", name, err)
	}
	return savePNG(filepath.Join(cfg.Out, name), grid, w, h)
}

// savePNG draws a grid of plots (nil cells stay empty) into a PNG written
// atomically.
func savePNG(path string, grid [][]*plot.Plot, w, h vg.Length) error {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(grid), Cols: len(grid[0]), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	// plot.Align needs every cell; fill empty ones with a blank plot.
	full := make([][]*plot.Plot, len(grid))
	for i := range grid {
		full[i] = make([]*plot.Plot, len(grid[i]))
		for j, p := range grid[i] {
			if p == nil {
				p = plot.New()
				p.HideAxes()
			}
			full[i][j] = p
		}
	}
	canvases := plot.Align(full, tiles, dc)
	for i := range grid {
		for j, p := range grid[i] {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	return writeAtomic(path, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

// addLine adds a line (points with non-finite y skipped) to p.
func addLine(p *plot.Plot, name string, pts plotter.XYs, c color.Color, width vg.Length, dashed bool) error {
	var ok plotter.XYs
	for _, q := range pts {
		if !math.IsNaN(q.Y) && !math.IsInf(q.Y, 0) && !math.IsNaN(q.X) {
			ok = append(ok, q)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	l, err := plotter.NewLine(ok)
	if err != nil {
		return err
	}
	l.Color = c
	l.Width = width
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(l)
	if name != "" {
		p.Legend.Add(name, l)
	}
	if len(ok) <= 30 && !dashed { // few points (evaluations): mark them
		sc, err := plotter.NewScatter(ok)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(2), Shape: draw.CircleGlyph{}}
		p.Add(sc)
	}
	return nil
}

// headroom raises the top of p's y range so that a legend in the top
// corner does not cover the data.
func headroom(p *plot.Plot, frac float64) {
	if _, ok := p.Y.Scale.(plot.LogScale); ok {
		if p.Y.Min > 0 && p.Y.Max < p.Y.Min*1.5 {
			p.Y.Min /= 1.5
			p.Y.Max *= 1.5
		}
		if p.Y.Min > 0 {
			p.Y.Max *= math.Pow(p.Y.Max/p.Y.Min, frac)
		}
		return
	}
	if p.Y.Max > p.Y.Min {
		p.Y.Max += (p.Y.Max - p.Y.Min) * frac
	} else {
		p.Y.Max += 0.5
		p.Y.Min -= 0.5
	}
}

// valSeries returns a run's validation loss by step for domain d ("": the
// average over domains), without step 0 (the untrained model, whose loss
// would squash the interesting range).
func valSeries(recs []Record, d string) plotter.XYs {
	var pts plotter.XYs
	for _, rec := range recs {
		if rec.ValLoss == nil || rec.Step == 0 {
			continue
		}
		v := float64(*rec.ValLoss)
		if d != "" {
			f, ok := rec.Val[d]
			if !ok {
				continue
			}
			v = float64(f)
		}
		pts = append(pts, plotter.XY{X: float64(rec.Step), Y: v})
	}
	return pts
}

// valLossPlots: the averaged validation loss per strategy; then, when
// there is a baseline to compare with, the difference of each strategy to
// it, averaged and per domain (below 0: better than the baseline), else
// the loss per domain.
func valLossPlots(cfg Config, e *env, s *Summary, results []runResult) ([][]*plot.Plot, vg.Length, vg.Length, error) {
	var base *runResult
	for i := range results {
		if results[i].strategy == s.Baseline && len(results) > 1 {
			base = &results[i]
		}
	}
	p := newPlot("validation loss, averaged over domains", "step", "loss (nats/token)")
	for _, r := range results {
		if err := addLine(p, r.strategy, valSeries(r.records, ""), plotColor(s, r.strategy), vg.Points(1.5), false); err != nil {
			return nil, 0, 0, err
		}
	}
	for _, rs := range s.Runs {
		if rs.Strategy == s.Baseline && rs.ValLoss.Valid() {
			hl := plotter.XYs{{X: 0, Y: float64(rs.ValLoss)}, {X: float64(cfg.Steps), Y: float64(rs.ValLoss)}}
			if err := addLine(p, s.Baseline+" final", hl, strategyColors[0], vg.Points(0.8), true); err != nil {
				return nil, 0, 0, err
			}
		}
	}
	headroom(p, 0.12*float64(len(results)+1))
	panels := []*plot.Plot{p}
	keys := append([]string{""}, e.domains...)
	if base == nil {
		keys = keys[1:]
	}
	for _, d := range keys {
		name := d
		if d == "" {
			name = "average"
		}
		if base == nil {
			p := newPlot("validation loss: "+name, "step", "loss (nats/token)")
			for _, r := range results {
				if err := addLine(p, r.strategy, valSeries(r.records, d), plotColor(s, r.strategy), vg.Points(1.5), false); err != nil {
					return nil, 0, 0, err
				}
			}
			headroom(p, 0.12*float64(len(results)+1))
			panels = append(panels, p)
			continue
		}
		p := newPlot(fmt.Sprintf("%s: val loss minus %s's (< 0: better)", name, s.Baseline), "step", "Δ loss (nats/token)")
		ref := map[float64]float64{}
		for _, q := range valSeries(base.records, d) {
			ref[q.X] = q.Y
		}
		zero := plotter.XYs{{X: 0, Y: 0}, {X: float64(cfg.Steps), Y: 0}}
		if err := addLine(p, s.Baseline, zero, strategyColors[0], vg.Points(1), true); err != nil {
			return nil, 0, 0, err
		}
		for _, r := range results {
			if r.strategy == s.Baseline {
				continue
			}
			var diff plotter.XYs
			for _, q := range valSeries(r.records, d) {
				if b, ok := ref[q.X]; ok {
					diff = append(diff, plotter.XY{X: q.X, Y: q.Y - b})
				}
			}
			if err := addLine(p, r.strategy, diff, plotColor(s, r.strategy), vg.Points(1.5), false); err != nil {
				return nil, 0, 0, err
			}
		}
		headroom(p, 0.12*float64(len(results)))
		panels = append(panels, p)
	}
	cols := min(4, len(panels))
	if len(panels) <= 6 {
		cols = min(3, len(panels))
	}
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		grid[i/cols][i%cols] = p
	}
	return grid, vg.Length(cols) * 4.2 * vg.Inch, vg.Length(rows) * 3.4 * vg.Inch, nil
}

// scoreRange returns the range D of a strategy's score (see the core's
// MaxWeightBound), or 0 when there is no closed form.
func scoreRange(strategy string, delta float64) float64 {
	switch strategy {
	case goreweight.LinUpper, goreweight.Extremes, goreweight.DROKL:
		return delta
	case goreweight.Quadratic:
		return 1
	}
	return 0
}

// temperaturePlots: r against step (log scale), and max w·M against step
// with the bound 2 of Theorem 1 and each strategy's worst case.
func temperaturePlots(cfg Config, e *env, s *Summary, results []runResult) ([][]*plot.Plot, vg.Length, vg.Length, error) {
	pr := newPlot(fmt.Sprintf("temperature r (uniform warm-up: first %d steps)", cfg.Warmup()), "step", "r (log scale)")
	pw := newPlot("largest weight × batch size (1 = uniform)", "step", "max w·M")
	delta := cfg.Delta
	if delta == 0 {
		delta = 1
	}
	hasR := false
	for _, r := range results {
		c := plotColor(s, r.strategy)
		var rp, wp, worst plotter.XYs
		for _, rec := range r.records {
			if rec.Step == 0 {
				continue
			}
			x := float64(rec.Step)
			if rec.R.Valid() {
				rp = append(rp, plotter.XY{X: x, Y: float64(rec.R)})
			}
			wp = append(wp, plotter.XY{X: x, Y: float64(rec.MaxWM)})
			if D := scoreRange(r.strategy, delta); D > 0 && rec.R.Valid() && cfg.Cap == 0 {
				worst = append(worst, plotter.XY{X: x, Y: goreweight.MaxWeightBound(cfg.Batch, D, float64(rec.R)) * float64(cfg.Batch)})
			}
		}
		if r.strategy != goreweight.Uniform {
			hasR = hasR || len(rp) > 0
			if err := addLine(pr, r.strategy, rp, c, vg.Points(1.5), false); err != nil {
				return nil, 0, 0, err
			}
		}
		if err := addLine(pw, r.strategy, wp, c, vg.Points(1), false); err != nil {
			return nil, 0, 0, err
		}
		if err := addLine(pw, r.strategy+" worst case", worst, c, vg.Points(0.8), true); err != nil {
			return nil, 0, 0, err
		}
	}
	if hasR {
		pr.Y.Scale = plot.LogScale{}
		pr.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		pr.Title.Text = "temperature r: uniform only (no temperature)"
	}
	bound := plotter.XYs{{X: 0, Y: 2}, {X: float64(cfg.Steps), Y: 2}}
	if err := addLine(pw, "2 (Theorem 1 bound)", bound, color.Black, vg.Points(0.8), true); err != nil {
		return nil, 0, 0, err
	}
	for _, p := range []*plot.Plot{pr, pw} {
		p.X.Min, p.X.Max = 0, float64(cfg.Steps)
	}
	pw.Y.Min = min(pw.Y.Min, 0.9)
	headroom(pw, 0.45)
	headroom(pr, 0.25)
	return [][]*plot.Plot{{pr}, {pw}}, 8 * vg.Inch, 7 * vg.Inch, nil
}

// weightSamples is how many samples a weight-vs-loss panel draws at most.
const weightSamples = 4000

// weightLossPlots: per strategy, weight × batch size against loss, coloured
// by document kind, over the second half of the run (after the warm-up).
func weightLossPlots(cfg Config, e *env, s *Summary, results []runResult) ([][]*plot.Plot, vg.Length, vg.Length, error) {
	from := int64(max(cfg.Warmup(), cfg.Steps/2))
	var row []*plot.Plot
	others := 0
	for _, r := range results {
		if r.strategy != goreweight.Uniform {
			others++
		}
	}
	for _, r := range results {
		if others > 0 && r.strategy == goreweight.Uniform {
			continue // all its weights are 1/M
		}
		p := newPlot(fmt.Sprintf("%s: weight vs loss, steps %d-%d", r.strategy, from+1, cfg.Steps), "sample loss (nats/token)", "weight × batch size (w·M)")
		sm := r.samples
		var idx []int
		for i := range sm.len() {
			if sm.step[i] > from {
				idx = append(idx, i)
			}
		}
		stride := max(1, (len(idx)+weightSamples-1)/weightSamples)
		for k, kind := range data.Kinds {
			var pts plotter.XYs
			for j := 0; j < len(idx); j += stride {
				i := idx[j]
				if int(sm.kind[i]) != k {
					continue
				}
				l, w := float64(sm.loss[i]), float64(sm.weight[i])*float64(cfg.Batch)
				if math.IsNaN(l) || math.IsInf(l, 0) {
					continue
				}
				pts = append(pts, plotter.XY{X: l, Y: w})
			}
			if len(pts) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(pts)
			if err != nil {
				return nil, 0, 0, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: kindColors[kind], Radius: vg.Points(1.6), Shape: draw.CircleGlyph{}}
			p.Add(sc)
			p.Legend.Add(fmt.Sprintf("%s (%d)", kind, len(pts)), sc)
		}
		p.Legend.Left = true
		headroom(p, 0.35)
		row = append(row, p)
	}
	return [][]*plot.Plot{row}, vg.Length(len(row)) * 5 * vg.Inch, 4.2 * vg.Inch, nil
}
