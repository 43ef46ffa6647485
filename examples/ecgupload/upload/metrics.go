package upload

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Metrics counts the server's events. Its fields are updated atomically and
// it is safe for concurrent use. WriteText renders them in the Prometheus
// text exposition format, so a /metrics handler needs no registry.
type Metrics struct {
	KeyRotations     atomic.Int64
	RejectedForged   atomic.Int64
	RejectedExpired  atomic.Int64
	RejectedReplay   atomic.Int64
	UploadsUnary     atomic.Int64
	UploadsStream    atomic.Int64
	BytesStored      atomic.Int64
	ChunksReceived   atomic.Int64
	ChunksRefused    atomic.Int64
	TransfersGranted atomic.Int64
	Preemptions      atomic.Int64
	QueueDepth       atomic.Int64 // gauge
	ActiveTransfers  atomic.Int64 // gauge
	PoolSize         atomic.Int64 // gauge
}

// WriteText writes the metrics in the Prometheus text format.
func (m *Metrics) WriteText(w io.Writer) error {
	rows := []struct {
		name, kind, help, labels string
		v                        *atomic.Int64
	}{
		{"ecgupload_key_rotations_total", "counter", "Key pair rotations.", "", &m.KeyRotations},
		{"ecgupload_rejected_requests_total", "counter", "Rejected upload requests.", `{reason="forged"}`, &m.RejectedForged},
		{"ecgupload_rejected_requests_total", "", "", `{reason="expired"}`, &m.RejectedExpired},
		{"ecgupload_rejected_requests_total", "", "", `{reason="replay"}`, &m.RejectedReplay},
		{"ecgupload_uploads_total", "counter", "Recordings stored.", `{mode="unary"}`, &m.UploadsUnary},
		{"ecgupload_uploads_total", "", "", `{mode="stream"}`, &m.UploadsStream},
		{"ecgupload_stored_bytes_total", "counter", "Bytes of recordings stored.", "", &m.BytesStored},
		{"ecgupload_chunks_received_total", "counter", "Chunks accepted.", "", &m.ChunksReceived},
		{"ecgupload_chunks_refused_total", "counter", "Chunks refused.", "", &m.ChunksRefused},
		{"ecgupload_transfers_granted_total", "counter", "Transfer slots granted.", "", &m.TransfersGranted},
		{"ecgupload_preemptions_total", "counter", "Transfers preempted.", "", &m.Preemptions},
		{"ecgupload_queue_depth", "gauge", "Transfers waiting for a slot.", "", &m.QueueDepth},
		{"ecgupload_active_transfers", "gauge", "Transfers holding a slot.", "", &m.ActiveTransfers},
		{"ecgupload_pool_size", "gauge", "Current size of the transfer pool.", "", &m.PoolSize},
	}
	for _, r := range rows {
		if r.kind != "" {
			if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", r.name, r.help, r.name, r.kind); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s%s %d\n", r.name, r.labels, r.v.Load()); err != nil {
			return err
		}
	}
	return nil
}
