package config

import "strings"

// propName is a property name as dotted segments, each split into words at '-' and at camelCase
// humps: "nanofaas.defaults.timeoutMs" → [[nanofaas] [defaults] [timeout Ms]].
type propName [][]string

func splitName(name string) propName {
	segs := strings.Split(name, ".")
	out := make(propName, len(segs))
	for i, s := range segs {
		out[i] = words(s)
	}
	return out
}

func words(seg string) []string {
	var ws []string
	start := 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '-' || c == '_' {
			if i > start {
				ws = append(ws, seg[start:i])
			}
			start = i + 1
			continue
		}
		if i > start && isUpper(c) && !isUpper(seg[i-1]) {
			ws = append(ws, seg[start:i])
			start = i
		}
	}
	if start < len(seg) {
		ws = append(ws, seg[start:])
	}
	return ws
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// envNames returns the two Spring spellings: canonical (dots → '_', dashes removed:
// NANOFAAS_DEFAULTS_TIMEOUTMS, SYNCQUEUE_MAXDEPTH) and legacy (every word boundary → '_':
// NANOFAAS_DEFAULTS_TIMEOUT_MS, SYNC_QUEUE_MAX_DEPTH); one name when they coincide.
func (n propName) envNames() []string {
	segs := make([]string, len(n))
	var all []string
	for i, ws := range n {
		segs[i] = strings.ToUpper(strings.Join(ws, ""))
		for _, w := range ws {
			all = append(all, strings.ToUpper(w))
		}
	}
	canonical, legacy := strings.Join(segs, "_"), strings.Join(all, "_")
	if canonical == legacy {
		return []string{canonical}
	}
	return []string{canonical, legacy}
}

// boundary says whether an env var may or must put '_' between two letters of a property.
type boundary uint8

const (
	boundaryNone      boundary = iota // inside a word: no '_'
	boundaryOptional                  // between words of one segment: '_' or nothing
	boundaryMandatory                 // between dotted segments: '_'
)

// envPattern accepts every env spelling of one property: the canonical and legacy forms and the
// mixes of both that Spring also binds (SYNC_QUEUE_MAXDEPTH).
type envPattern struct {
	prop    *property
	compact string     // upper case, no separators: SYNCQUEUEMAXDEPTH
	bounds  []boundary // bounds[i] is the boundary before compact[i]
}

func (n propName) envPattern(p *property) *envPattern {
	var b strings.Builder
	var bounds []boundary
	for si, ws := range n {
		for wi, w := range ws {
			kind := boundaryNone
			switch {
			case si > 0 && wi == 0:
				kind = boundaryMandatory
			case wi > 0:
				kind = boundaryOptional
			}
			for ci := 0; ci < len(w); ci++ {
				if ci == 0 {
					bounds = append(bounds, kind)
				} else {
					bounds = append(bounds, boundaryNone)
				}
			}
			b.WriteString(strings.ToUpper(w))
		}
	}
	return &envPattern{prop: p, compact: b.String(), bounds: bounds}
}

// matchEnv returns the property an environment variable name binds to, or nil. Names must be
// upper case; '_' may appear only at word boundaries and must appear between segments.
func (l *loader) matchEnv(name string) *property {
	if name == "" || name[0] == '_' || name[len(name)-1] == '_' {
		return nil
	}
	compact := make([]byte, 0, len(name))
	underscoreBefore := make([]bool, 0, len(name))
	pending := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			if pending {
				return nil // "__"
			}
			pending = true
		case isUpper(c) || ('0' <= c && c <= '9'):
			compact = append(compact, c)
			underscoreBefore = append(underscoreBefore, pending)
			pending = false
		default:
			return nil
		}
	}
	pat := l.byCompact[string(compact)]
	if pat == nil {
		return nil
	}
	for i, has := range underscoreBefore {
		switch pat.bounds[i] {
		case boundaryNone:
			if has {
				return nil
			}
		case boundaryMandatory:
			if !has {
				return nil
			}
		}
	}
	return pat.prop
}
