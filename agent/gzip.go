package agent

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
)

// A gzip response is assembled from deflate segments rather than
// compressed whole: the snapshot's runs of families are compressed once
// and cached, and only the live families are compressed per scrape. Every
// segment ends with a sync flush, which leaves the stream byte-aligned with
// no back-reference across segments, so segments concatenate into one valid
// deflate stream; a final empty block, the CRC-32 and the size finish it.

// deflaters lends out a bounded number of flate writers. Each holds about a
// megabyte of tables, so they are reused, and bounded so that a burst of
// concurrent scrapes cannot multiply them. A scrape waits for one only
// behind another scrape's compression, never behind a client or collector.
type deflaters struct {
	slots chan *flate.Writer
}

func newDeflaters(n int) *deflaters {
	d := &deflaters{slots: make(chan *flate.Writer, n)}
	for range n {
		d.slots <- nil // created on first use
	}
	return d
}

// deflate appends src to dst as sync-flushed deflate blocks.
func (d *deflaters) deflate(dst *bytes.Buffer, src []byte) {
	w := <-d.slots
	defer func() { d.slots <- w }()
	if w == nil {
		// BestSpeed: the live families are compressed on every scrape, and
		// their few kilobytes gain little from a slower level.
		w, _ = flate.NewWriter(dst, flate.BestSpeed) // the level is valid
	} else {
		w.Reset(dst)
	}
	// Writes to a bytes.Buffer do not fail.
	w.Write(src)
	w.Flush()
}

// gzipHeader is a gzip member header as compress/gzip writes it without a
// name or modification time: deflate, no flags, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// finalBlock is an empty final block with fixed Huffman codes, starting on
// a byte boundary.
var finalBlock = []byte{0x03, 0x00}

// finishGzip appends the final block and the trailer for the uncompressed
// body to dst, which holds the header and the segments.
func finishGzip(dst *bytes.Buffer, body []byte) {
	dst.Write(finalBlock)
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[0:4], crc32.ChecksumIEEE(body))
	binary.LittleEndian.PutUint32(trailer[4:8], uint32(len(body)))
	dst.Write(trailer[:])
}
