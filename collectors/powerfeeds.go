package collectors

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/spofwatch/spofwatch/spof"
	"github.com/spofwatch/spofwatch/ups"
)

// ApplyPowerFeeds composes the power-feed map (config `power_feeds:`,
// "<PSU member name>": "<UPS name or feed label>") with the groups of all
// collectors. Call it on the combined groups before spof.Evaluate. It is a
// pure function: the input is not modified.
//
//   - Every member of a power group named in feeds gets the failure domain
//     feed=<value>, so Evaluate's failure-domain rule names the UPS (or
//     feed) that every working PSU hangs on (shared_failure_domain).
//   - When the value names a UPS group (ups/nut/<value>) whose ups.status
//     has OB, a working PSU it feeds is marked degraded ("at risk"), which
//     Evaluate reports as member_degraded in the power group.
//   - The 2N load check: when a power group's PSUs are fed by two or more
//     UPSes, losing any one of them moves its load onto the others; with n
//     UPSes that fits only while the sum of their loads stays within
//     (n-1)*100 % (for two: load a + load b <= 100 %). Above that the power
//     group gets ups_overload. Loads are percent of each UPS's own rating,
//     so the check assumes UPSes of equal rating.
//
// UPS state travels in the UPS groups' attributes (AttrUPSStatus,
// AttrUPSLoad), so this needs nothing but the groups.
func ApplyPowerFeeds(groups []spof.Group, feeds map[string]string) []spof.Group {
	if len(feeds) == 0 {
		return groups
	}
	upses := map[string]powerFeedUPS{}
	for _, g := range groups {
		if g.Kind != spof.KindUPS || !strings.HasPrefix(g.ID, UPSGroupPrefix) {
			continue
		}
		u := powerFeedUPS{known: g.UnknownReason == ""}
		if s, ok := upsAttr(g, AttrUPSStatus); ok && u.known {
			for _, f := range strings.Fields(s) {
				if ups.Flag(f) == ups.FlagOnBattery {
					u.onBattery = true
				}
			}
		}
		if l, ok := upsAttr(g, AttrUPSLoad); ok && u.known {
			if v, err := strconv.ParseFloat(l, 64); err == nil {
				u.load, u.loadKnown = v, true
			}
		}
		u.runtime, _ = upsAttr(g, AttrUPSRuntime)
		upses[strings.TrimPrefix(g.ID, UPSGroupPrefix)] = u
	}

	out := make([]spof.Group, len(groups))
	for i, g := range groups {
		out[i] = g
		if g.Kind != spof.KindPower {
			continue
		}
		out[i] = applyPowerFeedsToGroup(g, feeds, upses)
	}
	return out
}

type powerFeedUPS struct {
	known     bool
	onBattery bool
	load      float64
	loadKnown bool
	runtime   string
}

func applyPowerFeedsToGroup(g spof.Group, feeds map[string]string, upses map[string]powerFeedUPS) spof.Group {
	touched := false
	members := make([]spof.Member, len(g.Members))
	fedBy := map[string][]string{} // UPS name -> working PSUs it feeds
	for i, m := range g.Members {
		members[i] = m
		feed, ok := feeds[m.Name]
		if !ok || feed == "" {
			continue
		}
		touched = true
		d := maps.Clone(m.Domains)
		if d == nil {
			d = map[string]string{}
		}
		d[spof.DomainFeed] = feed
		members[i].Domains = d
		u, isUPS := upses[feed]
		if !isUPS {
			continue
		}
		if m.State.Working() {
			fedBy[feed] = append(fedBy[feed], m.Name)
		}
		if u.onBattery && m.State == spof.MemberOK {
			members[i].State = spof.MemberDegraded
			detail := "fed by UPS " + feed + ", which is on battery"
			if u.runtime != "" {
				detail += " (runtime " + u.runtime + " s)"
			}
			members[i].Detail = detail
		}
	}
	if !touched {
		return g
	}
	g.Members = members
	g.Conditions = append([]spof.Condition(nil), g.Conditions...)
	if c, ok := powerFeedLoadCheck(g, fedBy, upses); ok {
		g.Conditions = append(g.Conditions, c)
	}
	return g
}

// powerFeedLoadCheck is the 2N check over the UPSes that feed working PSUs of g.
func powerFeedLoadCheck(g spof.Group, fedBy map[string][]string, upses map[string]powerFeedUPS) (spof.Condition, bool) {
	if len(fedBy) < 2 {
		return spof.Condition{}, false
	}
	names := make([]string, 0, len(fedBy))
	for n := range fedBy {
		names = append(names, n)
	}
	sort.Strings(names)
	fn := g.Function
	if fn == "" {
		fn = g.ID
	}
	total := 0.0
	var parts, unknown []string
	for _, n := range names {
		u := upses[n]
		if !u.loadKnown {
			unknown = append(unknown, n)
			continue
		}
		total += u.load
		parts = append(parts, fmt.Sprintf("%s %g%%", n, u.load))
	}
	if len(unknown) > 0 {
		return spof.Condition{
			Code:     spof.CodeNotice,
			Severity: spof.SeverityInfo,
			Summary:  fmt.Sprintf("%s: 2N load check not possible: no ups.load from %s", fn, strings.Join(unknown, ", ")),
		}, true
	}
	limit := float64(len(names)-1) * 100
	if total <= limit {
		return spof.Condition{}, false
	}
	other := "the other one"
	if len(names) > 2 {
		other = "the others"
	}
	return spof.Condition{
		Code: spof.CodeUPSOverload,
		Summary: fmt.Sprintf("%s: 2N load check failed: %s = %g%% > %g%%; if one UPS fails, %s cannot carry the load",
			fn, strings.Join(parts, " + "), total, limit, other),
		Details: "Loads are percent of each UPS's own rating; the check assumes UPSes of equal rating. Reduce the load or use larger UPSes.",
	}, true
}
