package ups

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestReadListCmd(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		maxCmds     int
		want        []string
		err         error
	}{
		{"two", "BEGIN LIST CMD u\nCMD u test.battery.start.quick\nCMD u test.battery.stop\nEND LIST CMD u\n", 0,
			[]string{"test.battery.start.quick", "test.battery.stop"}, nil},
		{"none", "BEGIN LIST CMD u\nEND LIST CMD u\n", 0, nil, nil},
		{"other UPS's and malformed lines skipped", "BEGIN LIST CMD u\nCMD v load.off\nCMD u\nCMD u a b\nCMD u \"q x\"\nEND LIST CMD u\n", 0,
			[]string{"q x"}, nil},
		{"bounded", "BEGIN LIST CMD u\nCMD u a\nCMD u b\nCMD u c\nEND LIST CMD u\n", 2, []string{"a", "b"}, nil},
		{"ERR", "ERR UNKNOWN-UPS\n", 0, nil, ErrUnknownUPS},
		{"wrong header", "BEGIN LIST VAR u\n", 0, nil, ErrProtocol},
		{"cut short", "BEGIN LIST CMD u\nCMD u a\n", 0, nil, nil},
	} {
		got, err := readListCmd(newLineReader(strings.NewReader(tc.reply), 128), "u", 4096, tc.maxCmds)
		if tc.name == "cut short" {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			}
			continue
		}
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestReadInstCmdReply(t *testing.T) {
	for _, tc := range []struct {
		reply, id string
		err       error
	}{
		{"OK\n", "", nil},
		{"OK TRACKING 1bd31808-cb49-4aec-9d75-d056e6f018d2\n", "1bd31808-cb49-4aec-9d75-d056e6f018d2", nil},
		{"ERR CMD-NOT-SUPPORTED\n", "", ErrCmdNotSupported},
		{"ERR ACCESS-DENIED\n", "", ErrAccessDenied},
		{"OK TRACKING\n", "", ErrProtocol},
		{"OK Goodbye\n", "", ErrProtocol},
		{"BEGIN LIST CMD u\n", "", ErrProtocol},
	} {
		id, err := readInstCmdReply(newLineReader(strings.NewReader(tc.reply), 128), 4096)
		if id != tc.id || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("%q: %q, %v; want %q, %v", tc.reply, id, err, tc.id, tc.err)
		}
	}
}

func TestReadTracking(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  TrackingStatus
		code  ErrorCode
		err   error
	}{
		{"PENDING\n", TrackingPending, "", nil},
		{"SUCCESS\n", TrackingSuccess, "", nil},
		{"ERR UNKNOWN\n", "", "UNKNOWN", nil},
		{"ERR FAILED\n", "", "FAILED", nil},
		{"ERR INVALID-ARGUMENT\n", "", CodeInvalidArgument, nil},
		{"ON\n", "", "", ErrProtocol},
		{"", "", "", nil},
	} {
		got, err := readTracking(newLineReader(strings.NewReader(tc.reply), 128), 4096)
		se, _ := IsServerError(err)
		switch {
		case tc.reply == "":
			if err == nil {
				t.Errorf("empty reply: no error")
			}
		case tc.code != "":
			if se == nil || se.Code != tc.code {
				t.Errorf("%q: %q, %v; want ERR %s", tc.reply, got, err, tc.code)
			}
		case got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil && err != nil):
			t.Errorf("%q: %q, %v; want %q, %v", tc.reply, got, err, tc.want, tc.err)
		}
	}
}
