package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// maxMappingEntries bounds one YAML mapping. No real section comes close
// (host_labels and power_feeds have dozens); yaml.v3 checks keys for
// duplicates in quadratic time, so a 100k-key map would take half a minute.
const maxMappingEntries = 1000

var (
	durationType      = reflect.TypeFor[Duration]()
	modelDurationType = reflect.TypeFor[model.Duration]()
	dateType          = reflect.TypeFor[Date]()
)

// schemaWalker checks a parsed document against the Go types it will be
// decoded into, before decoding, so that every problem is found with its
// line rather than the first one stopping the decoder: unknown keys (as
// yaml.v3's KnownFields, which stops at nothing but cannot be combined with
// the next two), durations (model.Duration's parse error stops the decoder
// and has no line) and oversized mappings. A bad duration or mapping is
// replaced in the tree so that decoding goes on to find the rest.
type schemaWalker struct {
	v    *validator
	seen map[walkKey]bool
}

type walkKey struct {
	n *yaml.Node
	t reflect.Type
}

func (w *schemaWalker) walk(n *yaml.Node, t reflect.Type) {
	if n == nil {
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// An alias can make one node reachable many times: walk it once per
	// type, so an alias bomb costs no more here than the document's size.
	k := walkKey{n, t}
	if w.seen[k] {
		return
	}
	w.seen[k] = true

	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			w.walk(c, t)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // decodes to the zero value
	}
	if t == durationType || t == modelDurationType {
		w.duration(n)
		return
	}
	if t == dateType {
		w.date(n)
		return
	}
	if n.Kind == yaml.MappingNode && len(n.Content)/2 > maxMappingEntries {
		w.v.errAt(n.Line, fmt.Sprintf("mapping has %d entries, more than the %d allowed", len(n.Content)/2, maxMappingEntries))
		n.Content = nil
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the wrong type
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if key.Value == "<<" && key.ShortTag() == "!!merge" {
				w.merge(val, t)
				continue
			}
			ft, ok := fields[key.Value]
			if !ok {
				w.v.errAt(key.Line, fmt.Sprintf("unknown key %q in %s", key.Value, section(t.Name())))
				continue
			}
			w.walk(val, ft)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 1; i < len(n.Content); i += 2 {
			w.walk(n.Content[i], t.Elem())
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for _, c := range n.Content {
			w.walk(c, t.Elem())
		}
	}
}

// merge walks the value of a merge key ("<<: *base" or "<<: [*a, *b]") as
// the struct it merges into.
func (w *schemaWalker) merge(n *yaml.Node, t reflect.Type) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		w.walk(n, t)
		return
	}
	for _, c := range n.Content {
		w.walk(c, t)
	}
}

// duration checks a duration scalar and, when it is bad, makes it 0s so
// that decoding continues.
func (w *schemaWalker) duration(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		if _, err := model.ParseDuration(n.Value); err == nil {
			return
		}
		w.v.errAt(n.Line, fmt.Sprintf("%q is not a duration (want e.g. 30s, 5m, 1h)", n.Value))
	} else {
		w.v.errAt(n.Line, "want a duration such as 30s, 5m or 1h")
	}
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "0s", Line: n.Line, Column: n.Column}
}

// date checks a date scalar and, when it is bad, blanks it so that
// decoding continues.
func (w *schemaWalker) date(n *yaml.Node) {
	var d Date
	if err := d.UnmarshalYAML(n); err == nil {
		return
	}
	w.v.errAt(n.Line, fmt.Sprintf("%q is not a date (want 2027-06-30 or an RFC 3339 time)", n.Value))
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "~", Line: n.Line, Column: n.Column}
}

// yamlFields maps the YAML keys of a struct to their types, as yaml.v3
// names them: the tag's name, else the lower-cased field name; "-" and
// unexported fields have no key; ",inline" fields lend theirs.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}
