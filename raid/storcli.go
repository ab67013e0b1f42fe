package raid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/spofwatch/spofwatch/internal/boundedexec"
)

// MegaController is one controller of `storcli64 /call show all J`
// (perccli prints the same document).
type MegaController struct {
	ID    int
	Model string
	// Status is "Controller Status" (Optimal, Needs Attention, ...).
	Status string
	// Err is set when storcli could not query this controller (Command
	// Status other than Success); nothing else is then known.
	Err string
	VDs []MegaVD
	// Drives are the TOPOLOGY rows of type DRIVE (members of drive
	// groups, including missing ones), or PD LIST entries in a drive group
	// when TOPOLOGY is absent.
	Drives []MegaDrive
	// Spares are hot spares (DHS/GHS) from PD LIST.
	Spares []MegaDrive
	// ArrayTypes maps a drive group to the RAID type of its TOPOLOGY
	// array rows (used when a VD's TYPE is not a RAID level).
	ArrayTypes map[int]string
	// Energy packs: BBU or CacheVault with their state.
	EnergyPacks []MegaEnergyPack
	Problems    []string
}

// MegaVD is one row of VD LIST.
type MegaVD struct {
	DG, VD int
	Type   string // RAID1, RAID5, RAID10, ...
	State  string // Optl, Dgrd, Pdgd, OfLn, ...
	Name   string
}

// MegaDrive is one physical drive.
type MegaDrive struct {
	EIDSlot string // "252:0", "-" for a missing drive
	DID     int    // -1 when none
	DG      int    // -1 when none
	Arr     int    // span, -1 when none
	Row     int    // position in the span, -1 when none
	State   string // Onln, Rbld, Offln, UBad, Msng, DHS, GHS, UGood, ...
}

// Name is how the operator finds the drive: "252:0", or the position of a
// missing one.
func (d MegaDrive) Name() string {
	if s := strings.TrimSpace(d.EIDSlot); s != "" && s != "-" {
		return s
	}
	return fmt.Sprintf("dg%d/arr%d/row%d", d.DG, d.Arr, d.Row)
}

// MegaEnergyPack is a BBU or CacheVault.
type MegaEnergyPack struct {
	Kind  string // "BBU" or "CacheVault"
	State string
}

// Optimal reports whether the pack needs no attention.
func (p MegaEnergyPack) Optimal() bool {
	s := strings.ToLower(strings.TrimSpace(p.State))
	return s == "optimal" || s == "0" || s == "ok"
}

// RequiredDrives is how many of n member drives must work for a VD of
// this RAID type, taking the worst case for spanned levels (a RAID10 that
// loses both drives of one mirror is gone, so it tolerates one failure).
// Redundant is false for RAID0 and unknown types.
func RequiredDrives(raidType string, n int) (int, bool) {
	if n < 1 {
		return 1, false
	}
	switch strings.ToUpper(strings.TrimSpace(raidType)) {
	case "RAID1":
		if n <= 2 {
			return 1, n == 2
		}
		return n - 1, true
	case "RAID10", "RAID1E", "RAID5", "RAID50":
		return max(n-1, 1), n > 1
	case "RAID6", "RAID60":
		return max(n-2, 1), n > 2
	}
	return n, false
}

// ParseStorcli parses `storcli64 /call show all J`. It fails only when the
// document is not JSON of that shape; a controller or row that does not
// parse is kept with a Problem.
func ParseStorcli(data []byte) ([]MegaController, error) {
	var doc struct {
		Controllers []struct {
			CommandStatus map[string]any `json:"Command Status"`
			ResponseData  map[string]any `json:"Response Data"`
		} `json:"Controllers"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse storcli JSON: %w", err)
	}
	if doc.Controllers == nil {
		return nil, errors.New("parse storcli JSON: no Controllers")
	}
	var out []MegaController
	for i, c := range doc.Controllers {
		mc := MegaController{ID: i, ArrayTypes: map[int]string{}}
		if id, ok := asInt(c.CommandStatus["Controller"]); ok {
			mc.ID = id
		}
		if st := asString(c.CommandStatus["Status"]); st != "Success" {
			mc.Err = strings.TrimSpace(st + " " + asString(c.CommandStatus["Description"]))
			if mc.Err == "" {
				mc.Err = "no command status"
			}
			out = append(out, mc)
			continue
		}
		rd := c.ResponseData
		if basics, ok := rd["Basics"].(map[string]any); ok {
			mc.Model = asString(basics["Model"])
		}
		if mc.Model == "" {
			mc.Model = asString(rd["Product Name"])
		}
		if st, ok := rd["Status"].(map[string]any); ok {
			mc.Status = asString(st["Controller Status"])
			for _, k := range []string{"BBU Status", "Energy Pack Status"} {
				if v := asString(st[k]); v != "" && v != "NA" && v != "N/A" {
					kind := "BBU"
					if k == "Energy Pack Status" {
						kind = "energy pack"
					}
					mc.EnergyPacks = append(mc.EnergyPacks, MegaEnergyPack{Kind: kind, State: v})
				}
			}
		}
		for key, kind := range map[string]string{"BBU_Info": "BBU", "Cachevault_Info": "CacheVault"} {
			for _, row := range asRows(rd[key]) {
				mc.EnergyPacks = append(mc.EnergyPacks, MegaEnergyPack{Kind: kind, State: asString(row["State"])})
			}
		}
		sort.SliceStable(mc.EnergyPacks, func(a, b int) bool { return mc.EnergyPacks[a].Kind < mc.EnergyPacks[b].Kind })
		for _, row := range asRows(rd["VD LIST"]) {
			vd, err := parseVDRow(row)
			if err != nil {
				mc.Problems = append(mc.Problems, err.Error())
				continue
			}
			mc.VDs = append(mc.VDs, vd)
		}
		topo := asRows(rd["TOPOLOGY"])
		for _, row := range topo {
			dg, _ := asInt(row["DG"])
			typ := asString(row["Type"])
			if strings.EqualFold(typ, "DRIVE") {
				mc.Drives = append(mc.Drives, driveRow(row, "EID:Slot"))
				continue
			}
			if _, isArr := asInt(row["Arr"]); isArr && strings.HasPrefix(strings.ToUpper(typ), "RAID") {
				if _, seen := mc.ArrayTypes[dg]; !seen {
					mc.ArrayTypes[dg] = typ
				}
			}
		}
		for _, row := range asRows(rd["PD LIST"]) {
			d := driveRow(row, "EID:Slt")
			switch d.State {
			case "DHS", "GHS":
				mc.Spares = append(mc.Spares, d)
			default:
				if topo == nil && d.DG >= 0 {
					mc.Drives = append(mc.Drives, d)
				}
			}
		}
		out = append(out, mc)
	}
	return out, nil
}

func parseVDRow(row map[string]any) (MegaVD, error) {
	vd := MegaVD{Type: asString(row["TYPE"]), State: asString(row["State"]), Name: strings.TrimSpace(asString(row["Name"]))}
	raw := asString(row["DG/VD"])
	dg, v, found := strings.Cut(raw, "/")
	if !found {
		// Some controllers print a bare number: the VD, in DG 0.
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return vd, fmt.Errorf("VD LIST: unparsable DG/VD %q", raw)
		}
		vd.DG, vd.VD = n, n
		return vd, nil
	}
	var err1, err2 error
	vd.DG, err1 = strconv.Atoi(strings.TrimSpace(dg))
	vd.VD, err2 = strconv.Atoi(strings.TrimSpace(v))
	if err1 != nil || err2 != nil {
		return vd, fmt.Errorf("VD LIST: unparsable DG/VD %q", raw)
	}
	return vd, nil
}

func driveRow(row map[string]any, slotKey string) MegaDrive {
	d := MegaDrive{EIDSlot: strings.TrimSpace(asString(row[slotKey])), State: asString(row["State"]), DID: -1, DG: -1, Arr: -1, Row: -1}
	if v, ok := asInt(row["DID"]); ok {
		d.DID = v
	}
	if v, ok := asInt(row["DG"]); ok {
		d.DG = v
	}
	if v, ok := asInt(row["Arr"]); ok {
		d.Arr = v
	}
	if v, ok := asInt(row["Row"]); ok {
		d.Row = v
	}
	return d
}

func asRows(v any) []map[string]any {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	var rows []map[string]any
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			rows = append(rows, m)
		}
	}
	return rows
}

func asString(v any) string {
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	}
	return ""
}

func asInt(v any) (int, bool) {
	s := asString(v)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1<<20 {
		return 0, false
	}
	return n, true
}

// ErrNoStorcli means the storcli binary is not installed.
var ErrNoStorcli = errors.New("storcli command not found")

// Storcli runs `<path> /call show all J`.
type Storcli struct {
	// Path is storcli64, perccli64, a name in PATH or an absolute path.
	// Default "storcli64".
	Path string
}

// Controllers runs storcli and parses its output.
func (s Storcli) Controllers(ctx context.Context) ([]MegaController, error) {
	path, err := exec.LookPath(orDefault(s.Path, "storcli64"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoStorcli, err)
	}
	out, runErr := boundedexec.Cmd{Path: path, Args: []string{"/call", "show", "all", "J", "nolog"}, Env: []string{"LC_ALL=C"}}.Run(ctx)
	if errors.Is(runErr, boundedexec.ErrOutputLimit) {
		return nil, fmt.Errorf("run %s /call show all J: %w", path, runErr) // truncated: do not parse
	}
	// storcli exits non-zero when a controller reports a failure but still
	// prints the JSON; parse what came.
	ctrls, perr := ParseStorcli(out.Stdout)
	if perr != nil {
		if runErr != nil {
			return nil, fmt.Errorf("run %s /call show all J: %w: %s", path, runErr, firstLine(string(out.Stderr)))
		}
		return nil, fmt.Errorf("%s: %w", path, perr)
	}
	return ctrls, nil
}
