package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // value, or error text when wantErr
		wantErr bool
		exposed bool
	}{
		{"newline trimmed", "s3cret\n", 0o600, "s3cret", false, false},
		{"CRLF and blanks trimmed", "s3cret \t\r\n\r\n", 0o600, "s3cret", false, false},
		{"leading space kept", " s3cret\n", 0o600, " s3cret", false, false},
		{"inner newline kept", "a\nb\n", 0o600, "a\nb", false, false},
		{"empty", "", 0o600, "is empty", true, false},
		{"only newline", "\n", 0o600, "is empty", true, false},
		{"group readable (root:spofwatch 0640, the packaged setup)", "x", 0o640, "x", false, false},
		{"world readable", "x", 0o604, "x", false, true},
		{"too large", strings.Repeat("x", MaxSize+1), 0o600, "more than 65536 bytes", true, false},
		{"at the limit", strings.Repeat("x", MaxSize), 0o600, strings.Repeat("x", MaxSize), false, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "s"+string(rune('a'+i)))
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil { // umask-proof
				t.Fatal(err)
			}
			s, err := Read(p)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, p, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Value) != tt.want || s.ReadableByOthers() != tt.exposed {
				t.Errorf("got %q exposed=%v, want %q exposed=%v", s.Value, s.ReadableByOthers(), tt.want, tt.exposed)
			}
		})
	}
}

func TestReadErrorsNameFileNotContent(t *testing.T) {
	_, err := Read("/nonexistent/token")
	if err == nil || !errors.Is(err, os.ErrNotExist) || err.Error() != "cannot read secret file /nonexistent/token: no such file or directory" {
		t.Errorf("err = %v", err)
	}
	if _, err := Read(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: err = %v", err)
	}
}

// A device that never ends or a FIFO with no writer is refused at once,
// never read: a reload must not hang on it.
func TestReadRefusesDevicesAndFIFOs(t *testing.T) {
	if _, err := Read("/dev/zero"); err == nil || !strings.Contains(err.Error(), "is a device") {
		t.Errorf("/dev/zero: err = %v", err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Read(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "is a FIFO") {
			t.Errorf("fifo: err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read blocked on a FIFO with no writer")
	}
}

// A regular file larger than the bound costs MaxSize bytes, not its size.
func TestReadLargeFileBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30) // sparse
	f.Close()
	if _, err := Read(p); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}

func TestCertPool(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CertPool(notPEM); err == nil || !strings.Contains(err.Error(), "no PEM certificate found") {
		t.Errorf("err = %v", err)
	}
	if _, err := CertPool(filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "cannot read CA file") {
		t.Errorf("err = %v", err)
	}
	if _, err := CertPool("/dev/zero"); err == nil || !strings.Contains(err.Error(), "is a device") {
		t.Errorf("err = %v, want a refusal of the device", err)
	}
}
