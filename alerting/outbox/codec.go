package outbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
)

// An entry file is one header line followed by a JSON body:
//
//	spofwatch-outbox 1 <crc32c of body, 8 hex digits> <body length>\n
//	{"id":...,"receiver":...,"alerts":[...]}
//
// The length catches truncation, the checksum catches corruption that still
// parses as JSON, and the version lets a later format be told apart.
const magic = "spofwatch-outbox"

const formatVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode serialises an entry into its file form.
func Encode(e Entry) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d %08x %d\n", magic, formatVersion, crc32.Checksum(body, castagnoli), len(body))
	b.Write(body)
	return b.Bytes(), nil
}

// Decode parses an entry file. It rejects anything truncated, corrupted,
// of another version or missing what delivery needs.
func Decode(b []byte) (Entry, error) {
	var e Entry
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return e, errors.New("no header line")
	}
	f := bytes.Fields(b[:nl])
	if len(f) != 4 || string(f[0]) != magic {
		return e, fmt.Errorf("bad header %q", truncate(b[:nl]))
	}
	if v, err := strconv.Atoi(string(f[1])); err != nil || v != formatVersion {
		return e, fmt.Errorf("unsupported format version %q", f[1])
	}
	sum, err := strconv.ParseUint(string(f[2]), 16, 32)
	if err != nil || len(f[2]) != 8 {
		return e, fmt.Errorf("bad checksum field %q", f[2])
	}
	n, err := strconv.Atoi(string(f[3]))
	if err != nil || n < 0 {
		return e, fmt.Errorf("bad length field %q", f[3])
	}
	body := b[nl+1:]
	if len(body) != n {
		return e, fmt.Errorf("body is %d bytes, header says %d (truncated?)", len(body), n)
	}
	if got := crc32.Checksum(body, castagnoli); got != uint32(sum) {
		return e, fmt.Errorf("checksum mismatch: body %08x, header %08x", got, sum)
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return Entry{}, fmt.Errorf("decode body: %w", err)
	}
	switch {
	case e.ID == 0:
		return Entry{}, errors.New("entry has no id")
	case e.Receiver == "":
		return Entry{}, errors.New("entry has no receiver")
	case len(e.Alerts) == 0:
		return Entry{}, errors.New("entry has no alerts")
	case e.Instance < 0 || (e.Instance > 0 && e.URL != ""):
		return Entry{}, fmt.Errorf("entry has a bad instance %d", e.Instance)
	}
	for i, a := range e.Alerts {
		if len(a.Labels) == 0 {
			return Entry{}, fmt.Errorf("alert %d has no labels", i)
		}
	}
	return e, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
