package alerting

import (
	"github.com/spofwatch/spofwatch/config"
)

// The `alerting:` section's schema, defaults and validation live in the
// config package (config.Alerting), so that config never imports alerting
// and every rule about the file has one home. These aliases keep the
// engine's vocabulary.
type (
	Config    = config.Alerting
	Receiver  = config.Receiver
	BasicAuth = config.BasicAuth
	TLSConfig = config.TLSConfig
)

// Defaults for keys left out of the configuration.
const (
	DefaultOutboxDir      = config.DefaultOutboxDir
	DefaultRepeatInterval = config.DefaultRepeatInterval
	DefaultKeepFiringFor  = config.DefaultKeepFiringFor
	DefaultWebhookTimeout = config.DefaultWebhookTimeout
	DefaultResendInterval = config.DefaultResendInterval
	// ResolvedPosts is how many consecutive pushes to Alertmanager carry a
	// resolved alert (endsAt = resolution time) before it is forgotten.
	ResolvedPosts = 3
)

// Receiver types.
const (
	TypeWebhook      = config.TypeWebhook
	TypeAlertmanager = config.TypeAlertmanager
)
