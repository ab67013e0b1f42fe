// Package redact holds the one rule for showing a URL that may carry
// credentials: in logs, errors, the API and the outbox.
package redact

import "net/url"

// URL is the one form in which a receiver URL leaves spofwatch: in
// logs, errors, the API and the outbox. It drops the userinfo (the user
// name too: it often is half the credential, or names the account), the
// query (tokens: ?token=...) and the fragment. The full URL is only used to
// send.
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Never echo what might hold a secret and did not even parse.
		return "(unparseable URL)"
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
