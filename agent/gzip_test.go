package agent

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
)

// inflate decompresses segments written by deflater.deflate, closing the
// stream with the final block as finishGzip does.
func inflate(t testing.TB, segments []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(segments), bytes.NewReader(finalBlock)))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

// exposition is a scrape body of the 200-group snapshot: the text the
// deflater is for.
func exposition(t testing.TB) []byte {
	t.Helper()
	exp := NewExporter(staticSource{snapshot200()}, map[string]string{"rack": "r1"})
	return exp.Encoded(expfmt.NewFormat(expfmt.TypeTextPlain)).body
}

func TestDeflateRoundTrips(t *testing.T) {
	matchLengths := func() []byte {
		// Repeats of every length from 3 to 300 at distances up to the
		// window, so that every length and distance code is used.
		var b bytes.Buffer
		for n := 3; n <= 300; n++ {
			chunk := strings.Repeat(string(rune('a'+n%26)), n%7) + strings.Repeat("xyz", n/3)
			b.WriteString(chunk)
			b.WriteString("|")
			b.WriteString(chunk)
		}
		return b.Bytes()
	}
	farRepeat := func(gap int) []byte {
		head := []byte("go_memstats_heap_alloc_bytes 1.2345e+06\n")
		fill := make([]byte, gap)
		for i := range fill {
			fill[i] = byte(i*7919>>3) ^ byte(i)
		}
		return bytes.Join([][]byte{head, fill, head}, nil)
	}
	binary := make([]byte, 70000)
	for i := range binary {
		binary[i] = byte(i * i >> 5)
	}
	for _, tc := range []struct {
		name string
		src  []byte
	}{
		{"empty", nil},
		{"one byte", []byte("x")},
		{"shorter than a match", []byte("abc")},
		{"high literals", []byte{0x8f, 0x90, 0xff, 0x00, 0x8f, 0x90, 0xff, 0x00}},
		{"run of one byte", bytes.Repeat([]byte{'-'}, 100000)},
		{"match lengths", matchLengths()},
		{"repeat just inside the window", farRepeat(maxDistance - 45)},
		{"repeat just outside the window", farRepeat(maxDistance + 1)},
		{"binary over 64 KiB", binary},
		{"exposition", exposition(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			newDeflater().deflate(&buf, tc.src)
			if got := inflate(t, buf.Bytes()); !bytes.Equal(got, tc.src) {
				t.Fatalf("round trip differs: got %d bytes, want %d", len(got), len(tc.src))
			}
			// A sync flush ends every segment.
			if !bytes.HasSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff}) {
				t.Errorf("segment does not end with a sync flush: % x", buf.Bytes()[max(0, buf.Len()-6):])
			}
		})
	}
}

// TestDeflateSegmentsConcatenate splices segments, as a gzip response is
// built, into a gzip member that compress/gzip reads back whole.
func TestDeflateSegmentsConcatenate(t *testing.T) {
	d := newDeflater()
	body := exposition(t)
	parts := [][]byte{body[:100], body[100:101], body[101:5000], nil, body[5000:]}
	var out bytes.Buffer
	out.Write(gzipHeader)
	for _, p := range parts {
		d.deflate(&out, p)
	}
	finishGzip(&out, body)
	r, err := gzip.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read gzip: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes, want %d", len(got), len(body))
	}
}

// TestDeflateCompressesExposition holds the deflater to a ratio close to
// compress/flate's BestSpeed on exposition text, so that a regression to
// (say) all literals cannot pass unnoticed.
func TestDeflateCompressesExposition(t *testing.T) {
	body := exposition(t)
	var ours, std bytes.Buffer
	newDeflater().deflate(&ours, body)
	fw, _ := flate.NewWriter(&std, flate.BestSpeed)
	fw.Write(body)
	fw.Flush()
	t.Logf("%d bytes: deflater %d, flate BestSpeed %d", len(body), ours.Len(), std.Len())
	if ours.Len() > std.Len()*3/2 {
		t.Errorf("deflater wrote %d bytes, over 1.5× flate BestSpeed's %d", ours.Len(), std.Len())
	}
}

func FuzzDeflate(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
	f.Add([]byte("# HELP go_gc_duration_seconds A summary.\n# TYPE go_gc_duration_seconds summary\ngo_gc_duration_seconds{quantile=\"0\"} 2.1e-05\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		var buf bytes.Buffer
		newDeflater().deflate(&buf, src)
		if got := inflate(t, buf.Bytes()); !bytes.Equal(got, src) {
			t.Fatalf("round trip differs: got %q, want %q", got, src)
		}
	})
}
