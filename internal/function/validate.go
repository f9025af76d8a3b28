package function

// NamePattern is the published function-name pattern, enforced per DECISIONS.md D22.
const NamePattern = `^[a-zA-Z][a-zA-Z0-9._-]{0,62}$`

// Validate runs the reference's bean validation on a registration body (before defaults are
// applied) and returns the violations as "<field>: <message>" details, in field order; nil when
// the spec is valid. The HTTP layer turns a non-empty result into 400 VALIDATION_ERROR.
func (s *Spec) Validate() []string {
	var details []string
	switch {
	case isBlank(s.Name):
		details = append(details, "name: must not be blank")
	case !ValidName(s.Name):
		details = append(details, `name: must match "`+NamePattern+`"`)
	}
	if isBlank(s.Image) {
		details = append(details, "image: must not be blank")
	}
	details = appendMin(details, "timeoutMs", s.TimeoutMs, 1, "must be greater than or equal to 1")
	details = appendMin(details, "concurrency", s.Concurrency, 1, "must be greater than or equal to 1")
	details = appendMin(details, "queueSize", s.QueueSize, 1, "must be greater than or equal to 1")
	details = appendMin(details, "maxRetries", s.MaxRetries, 0, "must be greater than or equal to 0")
	return details
}

// ValidName reports whether name matches NamePattern. Hand-written rather than a regexp: it is
// trivial and Java's [a-zA-Z] classes are ASCII-only, which a byte loop states directly.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 63 || !isASCIILetter(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isASCIILetter(c) && !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// isBlank is Hibernate's @NotBlank test: Java's String.trim() strips every char <= U+0020, so a
// string made only of those (or empty) is blank.
func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] > ' ' {
			return false
		}
	}
	return true
}

func appendMin(details []string, field string, v *int, lowest int, msg string) []string {
	if v != nil && *v < lowest {
		return append(details, field+": "+msg)
	}
	return details
}
