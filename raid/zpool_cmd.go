package raid

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spofwatch/spofwatch/sysdev"

	"github.com/spofwatch/spofwatch/internal/boundedexec"
)

// ErrNoZpool means the zpool command is not installed: the host has no ZFS.
var ErrNoZpool = errors.New("zpool command not found")

// ErrNoPools means zpool runs but there are no pools.
var ErrNoPools = errors.New("no ZFS pools")

// Zpool runs `zpool status`. JSON output (-j, OpenZFS 2.3+) is tried first
// unless Format says otherwise; text output (-p) is the fallback and is
// remembered once JSON fails.
type ZpoolCommand struct {
	// Path is the zpool binary, a name looked up in PATH or an absolute
	// path. Default "zpool".
	Path string
	// Format is "auto" (default), "json" or "text".
	Format string

	noJSON bool
}

// Status runs zpool status and parses it.
func (z *ZpoolCommand) Status(ctx context.Context) ([]Zpool, error) {
	path, err := exec.LookPath(orDefault(z.Path, "zpool"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoZpool, err)
	}
	format := orDefault(z.Format, "auto")
	if format != "text" && !z.noJSON {
		out, err := runZpool(ctx, path, "status", "-j")
		if err == nil {
			pools, perr := ParseZpoolStatusJSON(out)
			if perr == nil {
				return checkPools(pools, out)
			}
			err = perr
		}
		// A runaway zpool is not one without -j: do not run it again.
		if format == "json" || ctx.Err() != nil || errors.Is(err, boundedexec.ErrOutputLimit) {
			return nil, err
		}
		z.noJSON = true
	}
	out, err := runZpool(ctx, path, "status", "-p")
	if err != nil {
		return nil, err
	}
	return checkPools(ParseZpoolStatus(out), out)
}

func checkPools(pools []Zpool, out []byte) ([]Zpool, error) {
	if len(pools) == 0 {
		if bytes.Contains(out, []byte("no pools available")) || len(bytes.TrimSpace(out)) == 0 || bytes.Contains(out, []byte(`"pools": {}`)) {
			return nil, ErrNoPools
		}
		return nil, fmt.Errorf("zpool status: no pool found in %d bytes of output", len(out))
	}
	return pools, nil
}

func runZpool(ctx context.Context, path string, args ...string) ([]byte, error) {
	out, err := boundedexec.Cmd{Path: path, Args: args, Env: []string{"LC_ALL=C"}}.Run(ctx)
	if errors.Is(err, boundedexec.ErrOutputLimit) {
		return nil, fmt.Errorf("run %s %s: %w", path, strings.Join(args, " "), err)
	}
	if err != nil {
		if bytes.Contains(out.Stdout, []byte("no pools available")) || bytes.Contains(out.Stderr, []byte("no pools available")) {
			return out.Stdout, nil
		}
		return nil, fmt.Errorf("run %s %s: %w: %s", path, strings.Join(args, " "), err, firstLine(string(out.Stderr)))
	}
	return out.Stdout, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ReadKstatStates reads /proc/spl/kstat/zfs/<pool>/state for every pool:
// the kernel's pool state (ONLINE, DEGRADED, ...), a cheap check between
// full zpool runs. It returns an error wrapping fs.ErrNotExist when the zfs
// module is not loaded.
func ReadKstatStates(procPath string) (map[string]string, error) {
	dir := filepath.Join(orDefault(procPath, "/proc"), "spl", "kstat", "zfs")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	kstat, err := sysdev.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	defer kstat.Close()
	states := map[string]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		v, err := kstat.Read(e.Name() + "/state")
		if errors.Is(err, fs.ErrNotExist) {
			continue // not a pool directory
		}
		if err != nil {
			return nil, err
		}
		states[e.Name()] = v
	}
	return states, nil
}
