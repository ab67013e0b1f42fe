package agent

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"sync"
)

// A gzip response is assembled from deflate segments rather than
// compressed whole: the snapshot's runs of families are compressed once
// and cached, and only the live families are compressed per scrape. Every
// segment ends with a sync flush, which leaves the stream byte-aligned with
// no back-reference across segments, so segments concatenate into one valid
// deflate stream; a final empty block, the CRC-32 and the size finish it.
//
// The segments are compressed by deflater, a greedy LZ77 with deflate's
// fixed Huffman codes, rather than by compress/flate: a flate.Writer
// carries about 1.2 MB of tables whatever its level (even NoCompression),
// and writers kept for reuse stayed in the live heap, where the GC's
// GOGC=100 goal doubled them in resident memory. deflater's only state is
// a 32 KiB hash table, lent from a pool for the duration of one segment.
// Exposition text is long runs of repeated names and labels, which LZ77
// alone shrinks to about a fifth; dynamic Huffman codes would save little
// more.

// deflater compresses segments; the zero value is not usable, see
// newDeflater.
type deflater struct {
	tables sync.Pool // of *hashTable
}

const (
	hashBits = 13
	// maxDistance is deflate's window.
	maxDistance = 32768
	minMatch    = 4 // the hash covers 4 bytes
	maxMatch    = 258
)

// hashTable maps a hash of 4 bytes to 1 + the last position they started
// at, 0 for none.
type hashTable [1 << hashBits]int32

func newDeflater() *deflater {
	d := &deflater{}
	d.tables.New = func() any { return new(hashTable) }
	return d
}

// deflate appends src to dst as a fixed-Huffman deflate block followed by a
// sync flush, so that dst ends on a byte boundary.
func (d *deflater) deflate(dst *bytes.Buffer, src []byte) {
	// len(src) must fit the int32 positions; a larger segment is split
	// into blocks, each one compressed on its own.
	const maxBlock = 1 << 30
	for len(src) > maxBlock {
		d.deflate(dst, src[:maxBlock])
		src = src[maxBlock:]
	}
	table := d.tables.Get().(*hashTable)
	defer d.tables.Put(table)
	clear(table[:])
	w := bitWriter{dst: dst}
	w.write(0b010, 3) // not final, fixed Huffman codes
	lit := 0          // src[lit:i] are literals yet to be written
	for i := 0; i+minMatch <= len(src); {
		cur := binary.LittleEndian.Uint32(src[i:])
		h := hash4(cur)
		cand := int(table[h]) - 1
		table[h] = int32(i + 1)
		if cand < 0 || i-cand > maxDistance || binary.LittleEndian.Uint32(src[cand:]) != cur {
			i++
			continue
		}
		n := minMatch
		for n < maxMatch && i+n < len(src) && src[cand+n] == src[i+n] {
			n++
		}
		for _, c := range src[lit:i] {
			w.literal(int(c))
		}
		w.match(n, i-cand)
		// Index the matched positions too, so that later text can refer
		// to them.
		end := i + n
		for i++; i < end && i+minMatch <= len(src); i++ {
			table[hash4(binary.LittleEndian.Uint32(src[i:]))] = int32(i + 1)
		}
		i, lit = end, end
	}
	for _, c := range src[lit:] {
		w.literal(int(c))
	}
	w.literal(256) // end of block
	// Sync flush: an empty stored block, which starts on a byte boundary.
	w.write(0b000, 3)
	w.align()
	dst.Write([]byte{0x00, 0x00, 0xff, 0xff})
}

func hash4(u uint32) uint32 { return (u * 0x1e35a7bd) >> (32 - hashBits) }

// bitWriter packs deflate's LSB-first bit stream into dst.
type bitWriter struct {
	dst   *bytes.Buffer
	acc   uint64
	nbits uint
}

func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= v << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.dst.WriteByte(byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

// align pads with zero bits to the next byte boundary.
func (w *bitWriter) align() {
	if w.nbits > 0 {
		w.write(0, 8-w.nbits)
	}
}

// code writes a Huffman code, which deflate packs starting with its most
// significant bit.
func (w *bitWriter) code(c uint16, n uint) {
	w.write(uint64(bits.Reverse16(c)>>(16-n)), n)
}

// literal writes a literal/length symbol in the fixed code (RFC 1951,
// 3.2.6).
func (w *bitWriter) literal(sym int) {
	switch {
	case sym < 144:
		w.code(uint16(0x30+sym), 8)
	case sym < 256:
		w.code(uint16(0x190+sym-144), 9)
	case sym < 280:
		w.code(uint16(sym-256), 7)
	default:
		w.code(uint16(0xc0+sym-280), 8)
	}
}

// Base values and extra bits of the length codes 257-285 and distance
// codes 0-29 (RFC 1951, 3.2.5).
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// match writes a back-reference of length n (3-258) at distance dist
// (1-32768).
func (w *bitWriter) match(n, dist int) {
	l := len(lengthBase) - 1
	for int(lengthBase[l]) > n {
		l--
	}
	w.literal(257 + l)
	w.write(uint64(n-int(lengthBase[l])), uint(lengthExtra[l]))
	d := len(distBase) - 1
	for int(distBase[d]) > dist {
		d--
	}
	w.code(uint16(d), 5)
	w.write(uint64(dist-int(distBase[d])), uint(distExtra[d]))
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
