package agent

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// EncodedSource gives the latest snapshot's families encoded in a format.
type EncodedSource interface {
	Encoded(expfmt.Format) *Encoded
}

// MetricsHandlerOpts configures NewMetricsHandler.
type MetricsHandlerOpts struct {
	// Snapshot is encoded once per snapshot and format.
	Snapshot EncodedSource
	// Live is gathered and encoded on every scrape (Go runtime, process,
	// alerting counters); its names must differ from the snapshot's, or
	// the scrape falls back to merging like prometheus.Gatherers.
	Live   prometheus.Gatherer
	Logger *slog.Logger
	// MaxRequestsInFlight bounds the scrapes being prepared at once, like
	// promhttp's option of that name, but a scrape frees its slot before
	// it writes, so a client that does not read holds none; and as slots
	// are held only for the in-memory work, further scrapes wait for one
	// instead of getting 503.
	MaxRequestsInFlight int
	// WriteTimeout bounds writing the response to the client.
	WriteTimeout time.Duration
	// EnableOpenMetrics offers OpenMetrics in content negotiation, as
	// promhttp's option of that name does.
	EnableOpenMetrics bool
}

type metricsHandler struct {
	opts     MetricsHandlerOpts
	formats  []expfmt.Format
	inFlight chan struct{}
	deflater *deflater
	buffers  sync.Pool
}

// NewMetricsHandler serves /metrics from the snapshot's pre-encoded bytes,
// merging in the live families by name. The response is what
// promhttp.HandlerFor with ContinueOnError would write for the same
// families: the same negotiation of format and gzip, the same bytes (once
// decompressed), the same headers plus Content-Length. Scrapes never wait
// on a collector, and never on another client while holding a slot.
func NewMetricsHandler(opts MetricsHandlerOpts) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &metricsHandler{opts: opts, formats: expfmt.DefaultAcceptedFormats(),
		deflater: newDeflater()}
	if opts.EnableOpenMetrics {
		h.formats = expfmt.DefaultOpenMetricsAcceptedFormats()
	}
	if opts.MaxRequestsInFlight > 0 {
		h.inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	h.buffers.New = func() any { return new(bytes.Buffer) }
	return h
}

// maxPooledBuffer keeps an odd huge response from pinning its buffer.
const maxPooledBuffer = 4 << 20

func (h *metricsHandler) getBuffer() *bytes.Buffer {
	b := h.buffers.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func (h *metricsHandler) putBuffer(b *bytes.Buffer) {
	if b != nil && b.Cap() <= maxPooledBuffer {
		h.buffers.Put(b)
	}
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.inFlight != nil {
		// A slot is held only while the response is prepared in memory,
		// so the wait is short; it ends with the client's request.
		select {
		case h.inFlight <- struct{}{}:
		case <-r.Context().Done():
			return
		}
	}
	body, payload, gzipped, err := h.prepare(r)
	if h.inFlight != nil {
		<-h.inFlight
	}
	if gzipped {
		// Only the compressed payload is written: hand the body back now,
		// so a client that is slow to read holds the small form only.
		h.putBuffer(body)
		body = nil
	}
	defer h.putBuffer(body)
	defer h.putBuffer(payload)
	if err != nil {
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Add("Vary", "Accept")
	hdr.Add("Vary", "Accept-Encoding")
	hdr.Set("Content-Type", string(h.negotiateFormat(r)))
	out := body
	if gzipped {
		hdr.Set("Content-Encoding", "gzip")
		out = payload
	}
	hdr.Set("Content-Length", strconv.Itoa(out.Len()))
	rc := http.NewResponseController(w)
	if h.opts.WriteTimeout > 0 {
		// Not every ResponseWriter supports deadlines (test recorders).
		_ = rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
	}
	if _, err := w.Write(out.Bytes()); err != nil {
		h.opts.Logger.Debug("write metrics", "err", err)
		return
	}
	if h.opts.WriteTimeout > 0 {
		// The deadline is absolute and stays on the connection: lift it
		// once the response is out, so that it cannot cut a later request
		// on a kept-alive connection of a server without a WriteTimeout.
		if rc.Flush() == nil {
			_ = rc.SetWriteDeadline(time.Time{})
		}
	}
}

func (h *metricsHandler) negotiateFormat(r *http.Request) expfmt.Format {
	return expfmt.NegotiateAccept(r.Header, h.formats...)
}

// segment is a stretch of the response body: either a run of snapshot
// families [from, to), whose compressed form is cached, or live bytes.
type segment struct {
	start, end int
	from, to   int // to > from: snapshot families
}

// prepare builds the response body, and its gzip form when negotiated. The
// error is a gathering error that leaves nothing to serve.
func (h *metricsHandler) prepare(r *http.Request) (body, payload *bytes.Buffer, gzipped bool, _ error) {
	format := h.negotiateFormat(r)
	snap := h.opts.Snapshot.Encoded(format)
	var live []*dto.MetricFamily
	var liveErr error
	if h.opts.Live != nil {
		live, liveErr = h.opts.Live.Gather()
	}
	var filter map[string]bool
	if r.URL != nil && r.URL.RawQuery != "" {
		if names := r.URL.Query()["name[]"]; len(names) > 0 {
			filter = make(map[string]bool, len(names))
			for _, n := range names {
				filter[n] = true
			}
		}
	}

	body = h.getBuffer()
	var segs []segment
	encodeErr := snap.encodeErr
	if !slices.IsSortedFunc(live, compareFamilyNames) {
		live = slices.Clone(live)
		slices.SortFunc(live, compareFamilyNames)
	}
	if gatherErr := errors.Join(snap.gatherErr, liveErr); gatherErr != nil {
		h.opts.Logger.Error("error gathering metrics", "err", gatherErr)
		if len(snap.families)+len(live) == 0 {
			return body, nil, false, gatherErr
		}
	}
	merged, ok := h.merge(body, snap, live, filter, &segs, &encodeErr)
	if !ok {
		// A live family shares a name with the snapshot's: merge them the
		// way prometheus.Gatherers does, and encode everything.
		body.Reset()
		segs = segs[:0]
		encodeErr = nil
		mfs, err := prometheus.Gatherers{familiesGatherer(snap.families), h.opts.Live}.Gather()
		if err != nil {
			h.opts.Logger.Error("error gathering metrics", "err", err)
			if len(mfs) == 0 {
				return body, nil, false, err
			}
		}
		enc := expfmt.NewEncoder(body, format)
		for _, mf := range mfs {
			if filter != nil && !filter[mf.GetName()] {
				continue
			}
			if err := enc.Encode(mf); err != nil && encodeErr == nil {
				encodeErr = err
			}
		}
		merged = false
	}
	if encodeErr != nil {
		h.opts.Logger.Error("error encoding and sending metric family", "err", encodeErr)
	}
	body.Write(snap.trailer)
	if !merged {
		// Filtered or fallen back: nothing matches the cached runs.
		segs = append(segs[:0], segment{start: 0, end: body.Len()})
	} else {
		segs = appendLive(segs, body.Len()-len(snap.trailer), body.Len())
	}

	switch negotiateEncoding(r.Header, "identity", "gzip") {
	case "gzip":
	case "":
		h.opts.Logger.Error("error getting writer", "err", "content compression format not recognized; serving identity")
		return body, nil, false, nil
	default:
		return body, nil, false, nil
	}
	payload = h.getBuffer()
	payload.Write(gzipHeader)
	raw := body.Bytes()
	for _, s := range segs {
		if s.to > s.from {
			payload.Write(snap.deflatedRun(s.from, s.to, h.deflater))
		} else if s.end > s.start {
			h.deflater.deflate(payload, raw[s.start:s.end])
		}
	}
	finishGzip(payload, raw)
	return body, payload, true, nil
}

// merge writes the snapshot's encoded families and the live ones encoded
// now into body in name order, recording the segments. It reports false
// when a live family shares a name with a snapshot family; merged is false
// when a filter applied, so the segments do not match the cached runs.
func (h *metricsHandler) merge(body *bytes.Buffer, snap *Encoded, live []*dto.MetricFamily, filter map[string]bool, segs *[]segment, encodeErr *error) (merged, ok bool) {
	enc := expfmt.NewEncoder(body, snap.format)
	i, j := 0, 0
	for i < len(snap.names) || j < len(live) {
		if i < len(snap.names) && j < len(live) && snap.names[i] == live[j].GetName() {
			return false, false
		}
		if j == len(live) || (i < len(snap.names) && snap.names[i] < live[j].GetName()) {
			if filter == nil || filter[snap.names[i]] {
				start := body.Len()
				body.Write(snap.family(i))
				*segs = appendSnapshot(*segs, i, start, body.Len())
			}
			i++
			continue
		}
		if filter == nil || filter[live[j].GetName()] {
			start := body.Len()
			if err := enc.Encode(live[j]); err != nil && *encodeErr == nil {
				*encodeErr = err
			}
			*segs = appendLive(*segs, start, body.Len())
		}
		j++
	}
	return filter == nil, true
}

func appendSnapshot(segs []segment, i, start, end int) []segment {
	if n := len(segs); n > 0 && segs[n-1].to == i && segs[n-1].to > segs[n-1].from {
		segs[n-1].to, segs[n-1].end = i+1, end
		return segs
	}
	return append(segs, segment{start: start, end: end, from: i, to: i + 1})
}

func appendLive(segs []segment, start, end int) []segment {
	if start == end {
		return segs
	}
	if n := len(segs); n > 0 && segs[n-1].to == segs[n-1].from {
		segs[n-1].end = end
		return segs
	}
	return append(segs, segment{start: start, end: end})
}

func compareFamilyNames(a, b *dto.MetricFamily) int {
	return strings.Compare(a.GetName(), b.GetName())
}

// familiesGatherer hands out families gathered already.
type familiesGatherer []*dto.MetricFamily

func (f familiesGatherer) Gather() ([]*dto.MetricFamily, error) { return f, nil }
