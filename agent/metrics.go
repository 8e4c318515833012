package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spikewatch/spikewatch/internal/replay"
)

// StatsSource is a source that reports what it read (DirSource, StreamSource).
type StatsSource interface {
	Stats() replay.Stats
}

// Collector exposes an agent's running totals as Prometheus metrics, read at scrape time.
type Collector struct {
	stats *Stats
	src   StatsSource
	a     *Agent

	events, matched, rejected, files, readErrors             *prometheus.Desc
	sent, accepted, batchRejected, retried, reconnects, pend *prometheus.Desc
	countsAcked                                              *prometheus.Desc
}

// NewCollector builds the collector of an agent and its source (src may be nil).
func NewCollector(a *Agent, src StatsSource) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("spikewatch_agent_"+name, help, labels, nil)
	}
	return &Collector{
		stats: a.stats, src: src, a: a,
		events:        d("events_total", "CloudTrail events read."),
		matched:       d("events_counted_total", "Events of catalog APIs counted."),
		rejected:      d("events_rejected_total", "Events not counted, by reason.", "reason"),
		files:         d("files_total", "Input files read."),
		readErrors:    d("read_errors_total", "Inputs that could not be read whole."),
		sent:          d("batches_sent_total", "Batches sent to the hub (resends included)."),
		accepted:      d("batches_accepted_total", "Batches the hub acknowledged as indexed."),
		batchRejected: d("batches_rejected_total", "Batches the hub refused for good."),
		retried:       d("batches_retried_total", "Batches the hub asked to send again."),
		reconnects:    d("reconnects_total", "Streams to the hub that ended and were reopened."),
		pend:          d("batches_pending", "Batches held until the hub acknowledges them."),
		countsAcked:   d("counts_acked_total", "Counts in acknowledged batches."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.matched, c.rejected, c.files, c.readErrors, c.sent, c.accepted, c.batchRejected, c.retried, c.reconnects, c.pend, c.countsAcked} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if c.src != nil {
		st := c.src.Stats()
		counter(c.events, st.Events)
		counter(c.matched, st.Matched)
		counter(c.files, st.Files)
		counter(c.readErrors, st.ReadError)
		for reason, n := range st.Rejected {
			counter(c.rejected, n, reason)
		}
	}
	counter(c.sent, c.stats.Sent.Load())
	counter(c.accepted, c.stats.Accepted.Load())
	counter(c.batchRejected, c.stats.Rejected.Load())
	counter(c.retried, c.stats.Retried.Load())
	counter(c.reconnects, c.stats.Reconnects.Load())
	counter(c.countsAcked, c.stats.CountsAcked.Load())
	ch <- prometheus.MustNewConstMetric(c.pend, prometheus.GaugeValue, float64(c.a.outstanding.Load()))
}
