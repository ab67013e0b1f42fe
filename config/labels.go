package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// labelNameRE is the Prometheus label name syntax.
var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ReservedLabelNames are the label names a host label may not take:
// alertname, severity, group and member are set on every alert from the
// finding, instance on every alert and (by Prometheus) on every series, and
// job by Prometheus on every series, so a host label of that name would be
// overwritten or renamed to exported_job on spofwatch_host_info.
func ReservedLabelNames() []string {
	return []string{"alertname", "severity", "instance", "group", "member", "job"}
}

// CheckHostLabelName is the one rule for host label names, applied both
// when the config is loaded and by the alert engine: a valid Prometheus
// label name, not starting with "__" (reserved by Prometheus), and not one
// of ReservedLabelNames.
func CheckHostLabelName(name string) error {
	if !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__") {
		return fmt.Errorf("%q is not a valid Prometheus label name", name)
	}
	if slices.Contains(ReservedLabelNames(), name) {
		return fmt.Errorf("%q is set by spofwatch itself; choose another name", name)
	}
	return nil
}
