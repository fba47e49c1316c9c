package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// metrics are the daemon's Prometheus metrics. Counters are updated as
// unpacks end; per-stream gauges are read from the streams at scrape time.
type metrics struct {
	registry       *prometheus.Registry
	unpacksStarted prometheus.Counter
	unpacksDone    *prometheus.CounterVec
	unpackSeconds  prometheus.Histogram
	unpackScans    *prometheus.CounterVec
	objectsFetched prometheus.Counter
	bytesFetched   prometheus.Counter
	bytesWritten   prometheus.Counter
	urlsRejected   prometheus.Counter
}

const metricPrefix = "autoami_unpacker_"

func newMetrics(d *daemon) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		unpacksStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "unpacks_started_total", Help: "Unpacks started."}),
		unpacksDone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "unpacks_finished_total", Help: "Unpacks finished, by result (ok, error)."}, []string{"result"}),
		unpackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: metricPrefix + "unpack_duration_seconds", Help: "Duration of successful unpacks.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 12)}),
		unpackScans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "unpack_scans_total",
			Help: "Successful unpacks by how the volume's content was learnt: trusted (the stored manifest of the clean revision, checked where the patch touches it) or full (a scan of the whole volume)."},
			[]string{"scan"}),
		objectsFetched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "objects_fetched_total", Help: "Content objects downloaded."}),
		bytesFetched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "bytes_fetched_total", Help: "Bytes of content objects downloaded."}),
		bytesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "bytes_written_total", Help: "File content bytes written to volumes."}),
		urlsRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "object_urls_rejected_total", Help: "Object URLs the store refused (expired), asked for again."}),
	}
	m.unpacksDone.WithLabelValues("ok")
	m.unpacksDone.WithLabelValues("error")
	m.unpackScans.WithLabelValues("trusted")
	m.unpackScans.WithLabelValues("full")
	m.registry.MustRegister(m.unpacksStarted, m.unpacksDone, m.unpackSeconds, m.unpackScans, m.objectsFetched,
		m.bytesFetched, m.bytesWritten, m.urlsRejected, &streamCollector{d: d},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// streamCollector reports the streams and devices as they are at scrape time.
type streamCollector struct{ d *daemon }

var (
	descStreamState = prometheus.NewDesc(metricPrefix+"stream_state",
		"1 for the state each stream is in.", []string{"stream", "state"}, nil)
	descStreamRevision = prometheus.NewDesc(metricPrefix+"stream_clean_info",
		"1 for the revision a stream is clean at.", []string{"stream", "revision"}, nil)
	descStreamObjects = prometheus.NewDesc(metricPrefix+"stream_unpack_objects",
		"Objects of the current or last unpack, done and total.", []string{"stream", "kind"}, nil)
	descStreamBytes = prometheus.NewDesc(metricPrefix+"stream_unpack_bytes",
		"Bytes of the current or last unpack, done and total.", []string{"stream", "kind"}, nil)
	descDevices = prometheus.NewDesc(metricPrefix+"devices",
		"Attached volumes.", nil, nil)
	descLastRequest = prometheus.NewDesc(metricPrefix+"last_request_timestamp_seconds",
		"Time of the last API request.", nil, nil)
	descInfo = prometheus.NewDesc(metricPrefix+"info",
		"The unpacker's version.", []string{"version"}, nil)
)

var allStates = []wire.StreamState{
	wire.StateNoDevice, wire.StatePreparingVolume, wire.StateUnmounted, wire.StateMounted,
	wire.StateFetchingManifest, wire.StateScanning, wire.StateFetching, wire.StateUpdating,
	wire.StateMakingBootable, wire.StateSyncing, wire.StateClean, wire.StateFrozen,
	wire.StateUnmountedForSnapshot, wire.StateDirty,
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreamState, descStreamRevision, descStreamObjects, descStreamBytes, descDevices, descLastRequest, descInfo} {
		ch <- d
	}
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.status()
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, st.Version)
	ch <- prometheus.MustNewConstMetric(descDevices, prometheus.GaugeValue, float64(len(st.Devices)))
	ch <- prometheus.MustNewConstMetric(descLastRequest, prometheus.GaugeValue, float64(st.LastRequestAt.UnixNano())/1e9)
	for _, s := range st.Streams {
		for _, state := range allStates {
			v := 0.0
			if s.State == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descStreamState, prometheus.GaugeValue, v, s.Name, string(state))
		}
		if s.Revision != "" {
			ch <- prometheus.MustNewConstMetric(descStreamRevision, prometheus.GaugeValue, 1, s.Name, s.Revision)
		}
		if p := s.Progress; p != nil {
			ch <- prometheus.MustNewConstMetric(descStreamObjects, prometheus.GaugeValue, float64(p.ObjectsDone), s.Name, "done")
			ch <- prometheus.MustNewConstMetric(descStreamObjects, prometheus.GaugeValue, float64(p.ObjectsTotal), s.Name, "total")
			ch <- prometheus.MustNewConstMetric(descStreamBytes, prometheus.GaugeValue, float64(p.BytesDone), s.Name, "done")
			ch <- prometheus.MustNewConstMetric(descStreamBytes, prometheus.GaugeValue, float64(p.BytesTotal), s.Name, "total")
		}
	}
}
