package hub

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	streams       prometheus.Gauge
	streamErrors  *prometheus.CounterVec
	batches       *prometheus.CounterVec
	countsIndexed prometheus.Counter
	rejected      *prometheus.CounterVec
	bulkSeconds   prometheus.Histogram
	webhooks      *prometheus.CounterVec
	bulkBatches   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spikewatch_hub_streams", Help: "Agent streams open."}),
		streamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spikewatch_hub_stream_errors_total",
			Help: "Streams ended by an error, by reason."}, []string{"reason"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spikewatch_hub_batches_total",
			Help: "Batches settled, by ack status."}, []string{"status"}),
		countsIndexed: prometheus.NewCounter(prometheus.CounterOpts{Name: "spikewatch_hub_counts_indexed_total",
			Help: "Count documents accepted by OpenSearch."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spikewatch_hub_batches_rejected_total",
			Help: "Batches refused and never written, by reason."}, []string{"reason"}),
		bulkSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spikewatch_hub_bulk_seconds",
			Help: "Duration of bulk writes.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
	}
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spikewatch_hub_alert_webhooks_total",
		Help: "Alert webhook posts, by outcome (accepted, forbidden, bad_request)."}, []string{"outcome"})
	m.bulkBatches = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spikewatch_hub_bulk_batches",
		Help: "Agent batches written by one bulk request.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)})
	reg.MustRegister(m.bulkBatches)
	reg.MustRegister(m.streams, m.streamErrors, m.batches, m.countsIndexed, m.rejected, m.bulkSeconds, m.webhooks)
	return m
}
