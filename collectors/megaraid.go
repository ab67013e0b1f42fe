package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/spofwatch/spofwatch/agent"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spofwatch/spofwatch/raid"
	"github.com/spofwatch/spofwatch/spof"
)

// MegaRAIDOptions configures the megaraid collector.
type MegaRAIDOptions struct {
	// StorcliPath is storcli64 or perccli64 (config raid.storcli_path);
	// default "storcli64" from PATH.
	StorcliPath string
	Logger      *slog.Logger
}

// MegaRAIDCollector reports every virtual drive as a group
// storage/megaraid/c<N>/v<N>.
type MegaRAIDCollector struct {
	opts    MegaRAIDOptions
	logger  *slog.Logger
	storcli raid.Storcli
	vdState *prometheus.Desc
	noBin   sync.Once
}

// megaVDStates is the fixed value set of spofwatch_megaraid_vd_state.
var megaVDStates = []string{"Optl", "Dgrd", "Pdgd", "OfLn", "Rec", "other"}

// NewMegaRAIDCollector builds the megaraid collector.
func NewMegaRAIDCollector(opts MegaRAIDOptions) *MegaRAIDCollector {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &MegaRAIDCollector{
		opts:    opts,
		logger:  logger, // the wiring adds collector=megaraid
		storcli: raid.Storcli{Path: opts.StorcliPath},
		vdState: prometheus.NewDesc("spofwatch_megaraid_vd_state",
			"State of the MegaRAID virtual drive as storcli reports it (1 for the current state).", []string{"controller", "vd", "state"}, nil),
	}
}

// Name implements Collector.
func (c *MegaRAIDCollector) Name() string { return "megaraid" }

// Collect implements Collector.
func (c *MegaRAIDCollector) Collect(ctx context.Context) (agent.Result, error) {
	ctrls, err := c.storcli.Controllers(ctx)
	if errors.Is(err, raid.ErrNoStorcli) {
		c.noBin.Do(func() {
			c.logger.Info("storcli not found; MegaRAID collector disabled", "path", orWord(c.opts.StorcliPath, "storcli64"))
		})
		return agent.Result{}, agent.ErrNoData
	}
	if err != nil {
		return agent.Result{}, err
	}
	res := agent.Result{Descs: []*prometheus.Desc{c.vdState}}
	for _, mc := range ctrls {
		res.Groups = append(res.Groups, MegaRAIDGroups(mc)...)
		for _, vd := range mc.VDs {
			st := vd.State
			if !slices.Contains(megaVDStates, st) {
				st = "other"
			}
			for _, s := range megaVDStates {
				v := 0.0
				if s == st {
					v = 1
				}
				if m, err := prometheus.NewConstMetric(c.vdState, prometheus.GaugeValue, v, fmt.Sprintf("c%d", mc.ID), fmt.Sprintf("v%d", vd.VD), s); err == nil {
					res.Metrics = append(res.Metrics, m)
				}
			}
		}
	}
	if len(res.Groups) == 0 {
		// A controller without virtual drives (HBA/JBOD mode) holds no
		// redundancy we can judge.
		return agent.Result{}, agent.ErrNoData
	}
	return res, nil
}

// MegaRAIDGroups adapts one controller: a group per virtual drive, with
// the drives of its drive group as members.
func MegaRAIDGroups(mc raid.MegaController) []spof.Group {
	ctrl := fmt.Sprintf("c%d", mc.ID)
	if mc.Err != "" {
		return []spof.Group{{
			ID: "storage/megaraid/" + ctrl, Kind: spof.KindStorage,
			Function:      fmt.Sprintf("MegaRAID controller %d", mc.ID),
			UnknownReason: "storcli: " + mc.Err,
		}}
	}
	var packs []raid.MegaEnergyPack
	for _, p := range mc.EnergyPacks {
		if !p.Optimal() {
			packs = append(packs, p)
		}
	}
	var groups []spof.Group
	for _, vd := range mc.VDs {
		typ := vd.Type
		if !strings.HasPrefix(strings.ToUpper(typ), "RAID") {
			if at, ok := mc.ArrayTypes[vd.DG]; ok {
				typ = at
			}
		}
		fn := fmt.Sprintf("MegaRAID %s/v%d (%s)", ctrl, vd.VD, typ)
		if vd.Name != "" {
			fn = fmt.Sprintf("MegaRAID %s/v%d %q (%s)", ctrl, vd.VD, vd.Name, typ)
		}
		g := spof.Group{
			ID:       fmt.Sprintf("storage/megaraid/%s/v%d", ctrl, vd.VD),
			Kind:     spof.KindStorage,
			Function: fn,
			Attributes: []spof.Attribute{
				{Key: "controller", Value: strings.TrimSpace(mc.Model)},
				{Key: "controller_status", Value: mc.Status},
				{Key: "vd_type", Value: vd.Type},
				{Key: "vd_state", Value: vd.State},
				{Key: "drive_group", Value: fmt.Sprint(vd.DG)},
			},
		}
		trouble := false
		for _, d := range mc.Drives {
			if d.DG != vd.DG {
				continue
			}
			// No failure domains: each drive is its own disk, and every
			// drive of a VD hangs off its controller by construction.
			m := spof.Member{Name: d.Name(), Detail: "drive state " + d.State}
			switch d.State {
			case "Onln":
				m.State, m.Detail = spof.MemberOK, ""
			case "Rbld":
				m.State, m.Detail = spof.MemberRebuilding, "rebuilding"
			case "Cpybck":
				m.State, m.Detail = spof.MemberRebuilding, "copyback from hot spare"
			case "Offln", "UBad", "Failed", "UBUnsp":
				m.State = spof.MemberFailed
			case "Msng":
				m.State = spof.MemberMissing
			case "DHS", "GHS", "UGood", "JBOD":
				continue // spares and unconfigured drives are not members
			default:
				m.State = spof.MemberUnknown
			}
			if m.State != spof.MemberOK {
				trouble = true
			}
			g.Members = append(g.Members, m)
		}
		var spares []string
		for _, s := range mc.Spares {
			if s.State == "GHS" || s.DG == vd.DG {
				spares = append(spares, s.Name()+" "+s.State)
			}
		}
		if len(spares) > 0 {
			g.Attributes = append(g.Attributes, spof.Attribute{Key: "hot_spares", Value: strings.Join(spares, ", ")})
		}
		g.Required, _ = raid.RequiredDrives(typ, len(g.Members))
		if len(g.Members) == 0 {
			g.UnknownReason = fmt.Sprintf("no drives listed for drive group %d", vd.DG)
		}
		switch {
		case vd.State == "OfLn":
			g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeGroupDown,
				Summary: fmt.Sprintf("%s is offline", fn)})
		case vd.State != "Optl" && !trouble && len(g.Members) > 0:
			// The controller knows more than the drive list says: never
			// report a degraded VD as healthy.
			g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeRedundancyDegraded,
				Summary: fmt.Sprintf("%s: controller reports state %s", fn, vd.State)})
		}
		for _, p := range packs {
			g.Conditions = append(g.Conditions, spof.Condition{Code: spof.CodeMemberDegraded, Member: strings.ToLower(p.Kind),
				Summary: fmt.Sprintf("%s: %s of %s is %s; the write-back cache is at risk or disabled", fn, p.Kind, ctrl, p.State)})
		}
		groups = append(groups, g)
	}
	return groups
}
