package report

import (
	"fmt"
	"math"
	"strconv"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// matrixView is the pairwise overlap matrix drawn as an SVG heat map.
type matrixView struct {
	Width, Height int
	Max           int64
	Labels        []labelView // row labels (left) and column labels (top)
	Cells         []heatCell
	Parties       []string
	Rows          [][]cellView // the same numbers as a table
}

type labelView struct {
	X, Y   float64
	Text   string
	Rotate bool
}

type heatCell struct {
	cellView
	X, Y, W, H   int
	TX, TY       int
	Fill, Ink    string
	Title        string
	Diagonal     bool
	FontSizeText int
}

const (
	cellW = 96
	cellH = 44
)

func heatMap(parties []string, m [][]*int64) *matrixView {
	n := len(parties)
	longest := 0
	for _, p := range parties {
		longest = max(longest, len([]rune(p)))
	}
	left := 16 + 7*longest
	top := 24 + int(5.2*float64(longest))
	mv := &matrixView{Width: left + n*cellW + 12, Height: top + n*cellH + 12, Parties: parties}
	for _, row := range m {
		for _, c := range row {
			if c != nil && *c > mv.Max {
				mv.Max = *c
			}
		}
	}
	for i, p := range parties {
		mv.Labels = append(mv.Labels,
			labelView{X: float64(left - 8), Y: float64(top + i*cellH + cellH/2 + 5), Text: p},
			labelView{X: float64(left + i*cellW + cellW/2), Y: float64(top - 8), Text: p, Rotate: true})
	}
	mv.Rows = make([][]cellView, n)
	for i := range m {
		for j, c := range m[i] {
			cv := numCell(fmt.Sprintf("pairwise/%d/%d", i, j), c)
			mv.Rows[i] = append(mv.Rows[i], cv)
			hc := heatCell{cellView: cv, X: left + j*cellW, Y: top + i*cellH, W: cellW - 2, H: cellH - 2,
				TX: left + j*cellW + cellW/2 - 1, TY: top + i*cellH + cellH/2 + 4, Diagonal: i == j, FontSizeText: 14}
			if i == j {
				hc.Title = fmt.Sprintf("%s: %s records after de-duplication", parties[i], cv.Text)
			} else {
				hc.Title = fmt.Sprintf("%s and %s share %s", parties[i], parties[j], cv.Text)
			}
			if c == nil {
				hc.Fill, hc.Ink, hc.FontSizeText = "url(#hatch-matrix)", "#333", 12
			} else {
				t := 0.0
				if mv.Max > 0 {
					t = float64(*c) / float64(mv.Max)
				}
				hc.Fill, hc.Ink = blues(t), "#111"
				if t > 0.5 {
					hc.Ink = "#fff"
				}
			}
			mv.Cells = append(mv.Cells, hc)
		}
	}
	return mv
}

// blues maps t in [0, 1] to a sequential blue, light to dark.
func blues(t float64) string {
	t = math.Max(0, math.Min(1, t))
	lo, hi := [3]float64{239, 243, 255}, [3]float64{8, 48, 107}
	var c [3]int
	for k := range c {
		c[k] = int(math.Round(lo[k] + (hi[k]-lo[k])*t))
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}

// histView is one histogram drawn as an SVG bar chart.
type histView struct {
	ID, Name, Describe string
	Width, Height      int
	Baseline           int
	Bars               []barView
	Ticks              []tickView
	Summary            string
}

type barView struct {
	cellView
	Label          string
	X, Y, W, H     float64
	LabelX, LabelY float64
	ValueY         float64
}

type tickView struct {
	Y    float64
	Text string
}

const (
	chartW, chartH                     = 640, 260
	padLeft, padRight, padTop, padBott = 56, 16, 24, 52
)

func barChart(name string, a session.AggregateResult) (*histView, error) {
	k := len(a.Counts)
	if k == 0 || len(a.Edges) != k+1 {
		return nil, fmt.Errorf("%w: result: histogram %s has %d edges for %d counts", ErrInvalid, name, len(a.Edges), k)
	}
	var top int64
	suppressed := 0
	for _, c := range a.Counts {
		if c == nil {
			suppressed++
		} else if *c > top {
			top = *c
		}
	}
	ymax := niceCeil(top)
	h := &histView{ID: "h-" + name, Name: name, Width: chartW, Height: chartH, Baseline: chartH - padBott}
	plotH := float64(chartH - padBott - padTop)
	for v := int64(0); v <= ymax; v += tickStep(ymax) {
		h.Ticks = append(h.Ticks, tickView{Y: float64(h.Baseline) - plotH*float64(v)/float64(ymax), Text: strconv.FormatInt(v, 10)})
	}
	bw := float64(chartW-padLeft-padRight) / float64(k)
	for i, c := range a.Counts {
		closeB := ")"
		if i == k-1 {
			closeB = "]"
		}
		b := barView{cellView: numCell(fmt.Sprintf("agg/%s/count/%d", name, i), c),
			Label: fmt.Sprintf("[%s, %s%s", fmtEdge(a.Edges[i]), fmtEdge(a.Edges[i+1]), closeB)}
		b.X = float64(padLeft) + float64(i)*bw + bw*0.1
		b.W = bw * 0.8
		b.LabelX = b.X + b.W/2
		b.LabelY = float64(h.Baseline) + 18
		if c == nil {
			b.H = 16
		} else if ymax > 0 {
			b.H = plotH * float64(*c) / float64(ymax)
		}
		b.Y = float64(h.Baseline) - b.H
		b.ValueY = b.Y - 6
		h.Bars = append(h.Bars, b)
	}
	h.Summary = fmt.Sprintf("Bar chart of %s: %d bins", name, k)
	if suppressed > 0 {
		h.Summary += fmt.Sprintf(", %d of them suppressed (hatched)", suppressed)
	}
	return h, nil
}

func fmtEdge(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// tickStep divides ymax (a niceCeil value) into 2 to 5 whole steps.
func tickStep(ymax int64) int64 {
	for _, parts := range []int64{5, 4, 2} {
		if ymax%parts == 0 && ymax/parts >= 1 {
			return ymax / parts
		}
	}
	return ymax
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v int64) int64 {
	if v <= 1 {
		return 1
	}
	p := int64(1)
	for p*10 < v {
		p *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
