package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/spofwatch/spofwatch/drill/auditlog"
	spofweb "github.com/spofwatch/spofwatch/web"
)

// drillLogSource serves /api/v1/drills from the audit log in the state
// directory, read per request (bounded; the API is not scraped), so it
// needs nothing of the collector generation in force.
type drillLogSource struct{ path string }

func (s drillLogSource) DrillLog(limit int) (spofweb.DrillLog, error) {
	var out spofweb.DrillLog
	recs, err := auditlog.ReadLog(s.path, auditlog.DefaultLogReadBytes)
	var corrupt *auditlog.CorruptLogError
	switch {
	case errors.As(err, &corrupt):
		out.Problem = corrupt.Error()
	case err != nil:
		return out, err
	}
	for _, r := range auditlog.Interrupted(recs) {
		out.Interrupted = append(out.Interrupted, r.ID)
	}
	slices.Reverse(recs)
	if len(recs) > limit {
		recs, out.Truncated = recs[:limit], true
	}
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return out, fmt.Errorf("encode drill record %s: %w", r.ID, err)
		}
		out.Records = append(out.Records, b)
	}
	return out, nil
}
