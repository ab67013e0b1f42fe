package config

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spofwatch/spofwatch/spof"
)

// ProofConfig is how old a group's last proof of redundancy (md check, ZFS
// scrub, UPS self-test) may be before redundancy_untested (config
// `proof:`).
type ProofConfig struct {
	// MaxAge applies to every provable group without an override
	// (default 90d).
	MaxAge Duration `yaml:"max_age"`
	// Kinds override MaxAge per group kind (storage, network, ups, ...).
	Kinds map[string]Duration `yaml:"kinds"`
	// Groups override per group ID glob; the first match wins and beats a
	// kind.
	Groups []ProofGroupConfig `yaml:"groups"`
}

// ProofGroupConfig is one per-group override.
type ProofGroupConfig struct {
	Group  string   `yaml:"group"`
	MaxAge Duration `yaml:"max_age"`
}

// proofKinds are the kinds a `proof.kinds` key may name.
var proofKinds = []spof.Kind{spof.KindPower, spof.KindCooling, spof.KindStorage, spof.KindNetwork, spof.KindUPS}

// ProofPolicy returns the policy in the model's form.
func (c *Config) ProofPolicy() spof.ProofPolicy {
	p := spof.ProofPolicy{MaxAge: time.Duration(c.Proof.MaxAge)}
	if len(c.Proof.Kinds) > 0 {
		p.Kinds = map[spof.Kind]time.Duration{}
		for k, d := range c.Proof.Kinds {
			p.Kinds[spof.Kind(k)] = time.Duration(d)
		}
	}
	for _, g := range c.Proof.Groups {
		p.Groups = append(p.Groups, spof.GroupProofMaxAge{Group: g.Group, MaxAge: time.Duration(g.MaxAge)})
	}
	return p
}

// validateProof checks every age is positive, every kind known and every
// glob valid, each error at its line.
func (c *Config) validateProof(v *validator) {
	if c.Proof.MaxAge < 0 {
		v.failf([]string{"proof", "max_age"}, "must be positive")
	}
	for _, k := range sortedKeys(c.Proof.Kinds) {
		at := []string{"proof", "kinds", k}
		if !slices.Contains(proofKinds, spof.Kind(k)) {
			names := make([]string, len(proofKinds))
			for i, pk := range proofKinds {
				names[i] = string(pk)
			}
			v.failf(at, "unknown kind %q (want one of %s)", k, strings.Join(names, ", "))
		}
		if c.Proof.Kinds[k] <= 0 {
			v.failf(at, "max age must be positive")
		}
	}
	for i, g := range c.Proof.Groups {
		at := []string{"proof", "groups", strconv.Itoa(i)}
		if g.Group == "" {
			v.failf(at, "group is required")
		} else if _, err := path.Match(g.Group, ""); err != nil {
			v.failf(append(slices.Clone(at), "group"), "bad group glob %q: %v", g.Group, err)
		}
		if g.MaxAge <= 0 {
			v.failf(at, "max_age is required and must be positive")
		}
	}
}
