package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus collectors, in a registry of its own
// so several servers (tests) can live in one process.
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	promptTokens     prometheus.Counter
	completionTokens prometheus.Counter
	tokensPerSecond  prometheus.Histogram
	authFailures     *prometheus.CounterVec
	rejected         *prometheus.CounterVec
	auditRecords     prometheus.Counter
	auditErrors      prometheus.Counter
}

func newMetrics(adm *Admission) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "airlock_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"route"}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_prompt_tokens_total", Help: "Prompt tokens processed.",
		}),
		completionTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_completion_tokens_total", Help: "Completion tokens generated.",
		}),
		tokensPerSecond: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "airlock_generation_tokens_per_second", Help: "Completion tokens per second of each generation.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_auth_failures_total", Help: "Rejected authentication attempts by reason.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_rejected_requests_total", Help: "Requests refused by a limit or a full queue, by reason.",
		}, []string{"reason"}),
		auditRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_audit_records_total", Help: "Audit records made durable.",
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_audit_errors_total", Help: "Audit records that could not be written.",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.promptTokens, m.completionTokens, m.tokensPerSecond,
		m.authFailures, m.rejected, m.auditRecords, m.auditErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "airlock_queue_depth", Help: "Generation requests waiting for a slot.",
		}, func() float64 { return float64(adm.QueueDepth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "airlock_generations_in_flight", Help: "Generations holding a slot.",
		}, func() float64 { return float64(adm.Running()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
