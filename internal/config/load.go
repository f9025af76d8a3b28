package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load builds the configuration from, lowest to highest precedence: the defaults, the YAML file
// named by --config, environ (KEY=VALUE entries, as os.Environ returns them) and the
// --<property>=<value> flags in args (os.Args[1:]). It reads no process state except the
// --config file. All problems found are reported together; each value error is a *ValueError.
func Load(args []string, environ []string) (*Config, error) {
	props := properties()
	l := &loader{cfg: &Config{}, props: props, origins: make(map[string]origin, len(props))}
	if err := l.index(); err != nil {
		return nil, err
	}
	for i := range props {
		p := &props[i]
		if err := p.set(l.cfg, p.def); err != nil {
			return nil, fmt.Errorf("config: bad default %q for %s: %w", p.def, p.name, err) // table bug
		}
		l.origins[p.name] = origin{raw: p.def, source: "default"}
	}

	flags, err := l.parseArgs(args)
	if err != nil {
		return nil, err
	}
	if l.cfg.ConfigFile != "" {
		l.loadFile(l.cfg.ConfigFile)
	}
	l.loadEnv(environ)
	for _, a := range flags {
		l.assign(a)
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	l.validate()
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return l.cfg, nil
}

// origin is where a property's current value came from.
type origin struct {
	raw    string
	source string
}

// assignment is one value for one property from one source.
type assignment struct {
	prop   *property
	raw    string
	source string
}

type loader struct {
	cfg     *Config
	props   []property
	origins map[string]origin
	errs    []error

	byKey     map[string]*property   // normalized dotted key → property (YAML, flags)
	byCompact map[string]*envPattern // separator-free upper-case name → env spelling rules
}

// index builds the lookup maps and rejects a table where two properties would bind to the same
// key or env var.
func (l *loader) index() error {
	l.byKey = make(map[string]*property, len(l.props))
	l.byCompact = make(map[string]*envPattern, len(l.props))
	for i := range l.props {
		p := &l.props[i]
		key := normalizeKey(p.name)
		if q, dup := l.byKey[key]; dup {
			return fmt.Errorf("config: properties %s and %s bind to the same key", q.name, p.name)
		}
		l.byKey[key] = p
		pat := splitName(p.name).envPattern(p)
		if q, dup := l.byCompact[pat.compact]; dup {
			return fmt.Errorf("config: properties %s and %s bind to the same env var", q.prop.name, p.name)
		}
		l.byCompact[pat.compact] = pat
	}
	return nil
}

func (l *loader) assign(a assignment) {
	if err := a.prop.set(l.cfg, a.raw); err != nil {
		l.errs = append(l.errs, &ValueError{Property: a.prop.name, Value: a.raw, Source: a.source, Reason: err.Error()})
		return
	}
	l.origins[a.prop.name] = origin{raw: a.raw, source: a.source}
}

func (l *loader) validate() {
	c := l.cfg
	for i := range l.props {
		p := &l.props[i]
		if reason := p.check(c); reason != "" {
			o := l.origins[p.name]
			l.errs = append(l.errs, &ValueError{Property: p.name, Value: o.raw, Source: o.source, Reason: reason})
		}
	}
	if c.Server.Port != 0 && c.Server.Port == c.Management.Port {
		o := l.origins["management.server.port"]
		l.errs = append(l.errs, &ValueError{Property: "management.server.port", Value: o.raw, Source: o.source,
			Reason: "must differ from server.port"})
	}
}

// parseArgs reads the command line. --config and --register-examples are handled here; property
// flags are returned to be applied after the file and the environment.
func (l *loader) parseArgs(args []string) ([]assignment, error) {
	var flags []assignment
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "-h" || arg == "--help" {
			return nil, ErrHelp
		}
		if !strings.HasPrefix(arg, "--") || len(arg) == 2 {
			return nil, fmt.Errorf("unexpected argument %q: flags are --config FILE, --register-examples and --<property>=<value>", arg)
		}
		name, value, hasValue := strings.Cut(arg[2:], "=")
		switch name {
		case "config":
			if !hasValue {
				if i+1 >= len(args) {
					return nil, errors.New("flag --config needs a file: --config FILE")
				}
				i++
				value = args[i]
			}
			if strings.TrimSpace(value) == "" {
				return nil, errors.New("flag --config needs a file: --config FILE")
			}
			l.cfg.ConfigFile = value
		case "register-examples":
			if !hasValue {
				l.cfg.RegisterExamples = true
				continue
			}
			v, err := parseBool(value)
			if err != nil {
				return nil, fmt.Errorf("invalid value %q for flag --register-examples: %v", value, err)
			}
			l.cfg.RegisterExamples = v
		default:
			p, ok := l.byKey[normalizeKey(name)]
			if !ok {
				return nil, fmt.Errorf("unknown flag --%s: not a configuration property (flags are --config FILE, --register-examples and --<property>=<value>)", name)
			}
			if !hasValue {
				return nil, fmt.Errorf("flag --%s needs a value: --%s=<value>", name, name)
			}
			flags = append(flags, assignment{prop: p, raw: value, source: "flag --" + name})
		}
	}
	return flags, nil
}

// loadEnv applies every environ entry that names a property in one of its relaxed spellings.
// Different spellings of one property with different values are an error: environ has no order
// that could pick a winner.
func (l *loader) loadEnv(environ []string) {
	type seen struct{ name, value string }
	first := make(map[*property]seen)
	var order []assignment
	podNamespaceSeen := false
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if name == "POD_NAMESPACE" && !podNamespaceSeen {
			podNamespaceSeen = true
			l.cfg.K8s.PodNamespace = strings.TrimSpace(value)
			continue
		}
		p := l.matchEnv(name)
		if p == nil {
			continue
		}
		if s, dup := first[p]; dup {
			if s.name != name && s.value != value {
				l.errs = append(l.errs, fmt.Errorf("conflicting environment variables for %s: %s=%q and %s=%q",
					p.name, s.name, s.value, name, value))
			}
			continue // same name twice: the first wins, as getenv does
		}
		first[p] = seen{name, value}
		order = append(order, assignment{prop: p, raw: value, source: "env " + name})
	}
	for _, a := range order {
		l.assign(a)
	}
}

// loadFile applies the YAML file's known keys. Unknown keys are ignored, as Spring does.
func (l *loader) loadFile(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("config file: %w", err))
		return
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		l.errs = append(l.errs, fmt.Errorf("config file %s: %w", path, err))
		return
	}
	if len(doc.Content) == 0 {
		return // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return
	}
	if root.Kind != yaml.MappingNode {
		l.errs = append(l.errs, fmt.Errorf("config file %s: top level must be a mapping of property names", path))
		return
	}
	l.walkYAML(path, "", root)
}

func (l *loader) walkYAML(path, prefix string, m *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolveAlias(m.Content[i+1])
		key := k.Value
		if prefix != "" {
			key = prefix + "." + key
		}
		p := l.byKey[normalizeKey(key)]
		source := fmt.Sprintf("file %s:%d", path, k.Line)
		switch v.Kind {
		case yaml.MappingNode:
			if p != nil {
				l.errs = append(l.errs, &ValueError{Property: p.name, Value: "<mapping>", Source: source, Reason: "expected a single value"})
				continue
			}
			l.walkYAML(path, key, v)
		case yaml.SequenceNode:
			if p == nil {
				continue
			}
			items := make([]string, 0, len(v.Content))
			for _, it := range v.Content {
				it = resolveAlias(it)
				if it.Kind != yaml.ScalarNode {
					l.errs = append(l.errs, &ValueError{Property: p.name, Value: "<list>", Source: source, Reason: "expected a list of single values"})
					items = nil
					break
				}
				items = append(items, it.Value)
			}
			if items != nil {
				l.assign(assignment{prop: p, raw: strings.Join(items, ","), source: source})
			}
		case yaml.ScalarNode:
			if p == nil || v.Tag == "!!null" {
				continue // unknown key, or "key:" with no value = unset
			}
			l.assign(assignment{prop: p, raw: v.Value, source: source})
		}
	}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// normalizeKey makes YAML keys and flag names compare the way Spring's relaxed binding does:
// per dotted segment, case, '-' and '_' are ignored ("timeoutMs" = "timeout-ms").
func normalizeKey(key string) string {
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '-' || c == '_':
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func parseInt(raw string) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, errors.New("integer out of range")
		}
		return 0, errors.New("not an integer")
	}
	return v, nil
}

func parseBool(raw string) (bool, error) {
	switch s := strings.TrimSpace(raw); {
	case strings.EqualFold(s, "true"):
		return true, nil
	case strings.EqualFold(s, "false"):
		return false, nil
	}
	return false, errors.New("not a boolean (true or false)")
}

func parseFloat(raw string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || v != v || v > 1e308 || v < -1e308 {
		return 0, errors.New("not a number")
	}
	return v, nil
}
