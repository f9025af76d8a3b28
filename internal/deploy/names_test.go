package deploy

import "testing"

func TestNormalizeName_FollowsTheReferenceRule(t *testing.T) {
	for in, want := range map[string]string{
		"word-stats": "word-stats", "My.Func_1": "my-func-1", "--a--b--": "a-b", "": "fn",
		"...": "fn", "Ünïcode": "n-code", "a..b": "a-b",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}
