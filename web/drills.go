package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// DrillSource lists the drill audit log that `spofwatch drill` appends to
// in the state directory. web does not read it itself: the log's type
// belongs to the drill package, which depends on the sources.
type DrillSource interface {
	// DrillLog returns at most limit records, newest first.
	DrillLog(limit int) (DrillLog, error)
}

// DrillLog is the answer of /api/v1/drills.
type DrillLog struct {
	// Records are the audit log's records, newest first, each as the log
	// holds it: {"id","group","method","result","reason","started",
	// "finished","details","failed_members","user","uid","pid","scheduled"}.
	// A drill has a "started" record and, once it ended, a final one with
	// the same id.
	Records []json.RawMessage `json:"records"`
	// Truncated says there are more records than the limit.
	Truncated bool `json:"truncated"`
	// Interrupted are the ids of drills that recorded their start and no
	// end: killed, or still running.
	Interrupted []string `json:"interrupted"`
	// Problem names lines of the log that could not be read.
	Problem string `json:"problem,omitempty"`
}

// Bounds of ?limit= on /api/v1/drills.
const (
	defaultDrillLimit = 100
	maxDrillLimit     = 1000
)

// serveDrills answers GET /api/v1/drills?limit=: the drill audit log,
// newest first.
func serveDrills(opts Options) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := defaultDrillLimit
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxDrillLimit {
				http.Error(w, fmt.Sprintf("limit: want a whole number from 1 to %d, got %q", maxDrillLimit, v), http.StatusBadRequest)
				return
			}
			limit = n
		}
		log := DrillLog{}
		if opts.Drills != nil {
			var err error
			if log, err = opts.Drills.DrillLog(limit); err != nil {
				opts.Logger.Warn("read the drill audit log", "err", err)
				http.Error(w, "cannot read the drill audit log: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		if len(log.Records) > limit { // the source's promise, kept here too
			log.Records, log.Truncated = log.Records[:limit], true
		}
		if log.Records == nil {
			log.Records = []json.RawMessage{}
		}
		if log.Interrupted == nil {
			log.Interrupted = []string{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(log)
	}
}
