package deploy

import "strings"

// NormalizeName turns a function name into the lower-case `[a-z0-9-]` form the backends use in
// generated object names (container `nanofaas-<name>-r<k>`, image-validation pods): lower-case,
// every run of other characters becomes one `-`, leading and trailing `-` are dropped, and an
// empty result is `fn` (the reference's rule).
func NormalizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return "fn"
	}
	return b.String()
}
