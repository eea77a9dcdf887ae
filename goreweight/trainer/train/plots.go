package train

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"

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
// training results are in the other files. The validation plot shows every
// seed (mean and band); the temperature and weight plots show the first
// seed.
func writePlots(cfg Config, s *Summary, seeds []seedRun, warn io.Writer) ([]string, error) {
	var names []string
	first := func(fn func(Config, *env, *Summary, []runResult) ([][]*plot.Plot, vg.Length, vg.Length, error)) plotFunc {
		return func(cfg Config, s *Summary, seeds []seedRun) ([][]*plot.Plot, vg.Length, vg.Length, error) {
			return fn(cfg, seeds[0].env, s, seeds[0].results)
		}
	}
	for _, f := range []struct {
		name string
		fn   plotFunc
	}{
		{plotValLoss, valLossPlots},
		{plotTemp, first(temperaturePlots)},
		{plotWeightVL, first(weightLossPlots)},
	} {
		err := drawPlot(cfg, s, seeds, f.name, f.fn)
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

// plotFunc makes the grid of panels of one PNG and its size.
type plotFunc func(Config, *Summary, []seedRun) ([][]*plot.Plot, vg.Length, vg.Length, error)

// drawPlot makes and saves one plot; a panic in the plotting library
// becomes an error.
func drawPlot(cfg Config, s *Summary, seeds []seedRun, name string, fn plotFunc) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("train: plot %s: %v", name, p)
		}
	}()
	grid, w, h, err := fn(cfg, s, seeds)
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

// seedCurves returns, for one strategy, its validation series of domain d
// ("": the average) of every seed, minus the same seed's baseline series
// when diff is set.
func seedCurves(s *Summary, seeds []seedRun, strategy, d string, diff bool) []plotter.XYs {
	var out []plotter.XYs
	for _, sr := range seeds {
		var recs, base []Record
		for _, r := range sr.results {
			if r.strategy == strategy {
				recs = r.records
			}
			if r.strategy == s.Baseline {
				base = r.records
			}
		}
		pts := valSeries(recs, d)
		if diff {
			ref := map[float64]float64{}
			for _, q := range valSeries(base, d) {
				ref[q.X] = q.Y
			}
			var dp plotter.XYs
			for _, q := range pts {
				if b, ok := ref[q.X]; ok {
					dp = append(dp, plotter.XY{X: q.X, Y: q.Y - b})
				}
			}
			pts = dp
		}
		out = append(out, pts)
	}
	return out
}

// meanBand returns the mean over the curves at each step they all have,
// and the band between their minimum and maximum there (nil for one
// curve).
func meanBand(curves []plotter.XYs) (plotter.XYs, plotter.XYs) {
	if len(curves) == 0 {
		return nil, nil
	}
	var meanPts, lo, hi plotter.XYs
	for _, q := range curves[0] {
		var ys []float64
		for _, c := range curves {
			for _, r := range c {
				if r.X == q.X {
					ys = append(ys, r.Y)
					break
				}
			}
		}
		if len(ys) != len(curves) {
			continue
		}
		meanPts = append(meanPts, plotter.XY{X: q.X, Y: mean(ys)})
		lo = append(lo, plotter.XY{X: q.X, Y: slices.Min(ys)})
		hi = append(hi, plotter.XY{X: q.X, Y: slices.Max(ys)})
	}
	if len(curves) < 2 || len(meanPts) < 2 {
		return meanPts, nil
	}
	band := append(plotter.XYs(nil), lo...)
	for i := len(hi) - 1; i >= 0; i-- {
		band = append(band, hi[i])
	}
	return meanPts, band
}

// addMeanBand draws the mean curve of a strategy over seeds with its
// min-max band, translucent, in the strategy's colour.
func addMeanBand(p *plot.Plot, name string, curves []plotter.XYs, c color.Color) error {
	m, band := meanBand(curves)
	for _, q := range band {
		if math.IsNaN(q.Y) || math.IsInf(q.Y, 0) {
			band = nil
			break
		}
	}
	if band != nil {
		poly, err := plotter.NewPolygon(band)
		if err != nil {
			return err
		}
		r, g, b, _ := c.RGBA()
		poly.Color = color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0x38}
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	if len(curves) > 1 {
		name = fmt.Sprintf("%s (mean of %d seeds)", name, len(curves))
	}
	return addLine(p, name, m, c, vg.Points(1.5), false)
}

// valLossPlots: the averaged validation loss per strategy; then, when
// there is a baseline to compare with, the difference of each strategy to
// it, averaged and per domain (below 0: better), else the loss per domain.
// With several seeds each strategy is its mean curve over the seeds with
// a translucent band from the seeds' minimum to their maximum (for the
// differences: of the paired, same-seed differences).
func valLossPlots(cfg Config, s *Summary, seeds []seedRun) ([][]*plot.Plot, vg.Length, vg.Length, error) {
	names := cfg.Strategies()
	hasBase := len(names) > 1
	title := "validation loss, averaged over domains"
	if len(seeds) > 1 {
		title = fmt.Sprintf("val loss, avg over domains (band: min-max, %d seeds)", len(seeds))
	}
	p := newPlot(title, "step", "loss (nats/token)")
	for _, n := range names {
		if err := addMeanBand(p, n, seedCurves(s, seeds, n, "", false), plotColor(s, n)); err != nil {
			return nil, 0, 0, err
		}
	}
	if st := s.Strategies[s.Baseline]; st != nil && st.ValLossMean.Valid() {
		hl := plotter.XYs{{X: 0, Y: float64(st.ValLossMean)}, {X: float64(cfg.Steps), Y: float64(st.ValLossMean)}}
		if err := addLine(p, s.Baseline+" final", hl, strategyColors[0], vg.Points(0.8), true); err != nil {
			return nil, 0, 0, err
		}
	}
	headroom(p, 0.12*float64(len(names)+1))
	panels := []*plot.Plot{p}
	keys := append([]string{""}, s.Domains...)
	if !hasBase {
		keys = keys[1:]
	}
	for _, d := range keys {
		name := d
		if d == "" {
			name = "average"
		}
		if !hasBase {
			p := newPlot("validation loss: "+name, "step", "loss (nats/token)")
			for _, n := range names {
				if err := addMeanBand(p, n, seedCurves(s, seeds, n, d, false), plotColor(s, n)); err != nil {
					return nil, 0, 0, err
				}
			}
			headroom(p, 0.12*float64(len(names)+1))
			panels = append(panels, p)
			continue
		}
		p := newPlot(fmt.Sprintf("%s: val loss minus %s's (< 0: better)", name, s.Baseline), "step", "Δ loss (nats/token)")
		zero := plotter.XYs{{X: 0, Y: 0}, {X: float64(cfg.Steps), Y: 0}}
		if err := addLine(p, s.Baseline, zero, strategyColors[0], vg.Points(1), true); err != nil {
			return nil, 0, 0, err
		}
		for _, n := range names {
			if n == s.Baseline {
				continue
			}
			if err := addMeanBand(p, n, seedCurves(s, seeds, n, d, true), plotColor(s, n)); err != nil {
				return nil, 0, 0, err
			}
		}
		headroom(p, 0.12*float64(len(names)))
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

// scoreRange returns the range D of a strategy's score (the D of the core's
// MaxWeightBound, from the core's ScoreRange), or 0 when there is no closed
// form (selectors, user strategies) or the score is constant (uniform).
func scoreRange(strategy string, delta float64) float64 {
	lo, hi, ok := goreweight.ScoreRange(strategy, delta)
	if !ok {
		return 0
	}
	return hi - lo
}

// temperaturePlots: r against step (log scale), and max w·M against step
// with the bound 2 of Theorem 1 and each strategy's worst case.
func temperaturePlots(cfg Config, e *env, s *Summary, results []runResult) ([][]*plot.Plot, vg.Length, vg.Length, error) {
	pr := newPlot(fmt.Sprintf("temperature r (uniform warm-up: first %d steps)", cfg.Warmup()), "step", "r (log scale)")
	pw := newPlot("largest weight × batch size (1 = uniform)", "step", "max w·M")
	delta := cfg.Delta // validated > 0, like every Config the trainer runs
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
