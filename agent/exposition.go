package agent

import (
	"bytes"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Encoded is a snapshot's metric families encoded once in one exposition
// format: a scrape copies these bytes instead of encoding the immutable
// snapshot again. It is shared between scrapes and read-only, except for
// its cache of compressed runs.
type Encoded struct {
	format expfmt.Format
	// families are the snapshot's gathered families, sorted by name; names
	// and ends index them: body[ends[i-1]:ends[i]] is family i encoded.
	families []*dto.MetricFamily
	names    []string
	ends     []int
	body     []byte
	// trailer is what the encoder writes on Close (OpenMetrics' "# EOF").
	trailer []byte
	// gatherErr is the snapshot's gathering error; encodeErr the first
	// error encoding a family. promhttp logs them on every scrape.
	gatherErr, encodeErr error

	mu sync.Mutex
	// deflated holds runs of consecutive families [i, j), compressed once
	// as byte-aligned deflate blocks (see appendGzip).
	deflated map[[2]int][]byte
}

// maxDeflatedRuns bounds the cache of compressed runs: the live families
// split the snapshot's families at the same places scrape after scrape, so
// a handful of runs is all a steady state needs.
const maxDeflatedRuns = 32

// encodeFamilies encodes each family on its own, the way promhttp's encoder
// loop does, keeping where each one ends. A family that fails to encode
// keeps whatever bytes the encoder wrote, as in promhttp's output.
func encodeFamilies(families []*dto.MetricFamily, format expfmt.Format, gatherErr error) *Encoded {
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	e := &Encoded{format: format, families: families, gatherErr: gatherErr,
		names: make([]string, len(families)), ends: make([]int, len(families))}
	for i, mf := range families {
		if err := enc.Encode(mf); err != nil && e.encodeErr == nil {
			e.encodeErr = err
		}
		e.names[i] = mf.GetName()
		e.ends[i] = buf.Len()
	}
	bodyLen := buf.Len()
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil && e.encodeErr == nil {
			e.encodeErr = err
		}
	}
	all := bytes.Clone(buf.Bytes())
	e.body, e.trailer = all[:bodyLen:bodyLen], all[bodyLen:]
	return e
}

// family returns family i's encoded bytes.
func (e *Encoded) family(i int) []byte {
	return e.body[e.start(i):e.ends[i]]
}

func (e *Encoded) start(i int) int {
	if i == 0 {
		return 0
	}
	return e.ends[i-1]
}

// deflatedRun returns families [i, j) compressed, compressing and caching
// them on first use.
func (e *Encoded) deflatedRun(i, j int, d *deflater) []byte {
	key := [2]int{i, j}
	e.mu.Lock()
	run, ok := e.deflated[key]
	e.mu.Unlock()
	if ok {
		return run
	}
	var buf bytes.Buffer
	d.deflate(&buf, e.body[e.start(i):e.ends[j-1]])
	run = buf.Bytes()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.deflated == nil {
		e.deflated = map[[2]int][]byte{}
	}
	if len(e.deflated) < maxDeflatedRuns {
		e.deflated[key] = run
	}
	return run
}
