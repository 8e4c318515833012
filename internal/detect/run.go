package detect

import "time"

// Point is one value of a series.
type Point struct {
	Time  time.Time
	Value float64
}

// Run scores a whole series with a fresh Model and returns one result per interval, from the
// interval of the first point to that of the last. Points must be in time order; intervals
// without a point are imputed as zero (a gap longer than MaxImpute intervals is shortened to
// MaxImpute, as in Model.Update); of several points in one interval the last one wins; a point
// before its predecessor's interval is ignored.
func Run(cfg Config, points []Point) []Result {
	m := NewModel(cfg)
	out := make([]Result, 0, len(points))
	emit := func(r Result) { out = append(out, r) }
	for _, pt := range points {
		ts := pt.Time.Truncate(time.Duration(m.p.iv))
		if m.started {
			if ts.Before(m.cur) {
				continue
			}
			if ts.Equal(m.cur) {
				out[len(out)-1] = m.Update(pt.Time, pt.Value)
				continue
			}
		}
		out = append(out, m.update(pt.Time, pt.Value, emit))
	}
	return out
}
