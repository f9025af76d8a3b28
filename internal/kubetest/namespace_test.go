package kubetest

import (
	"regexp"
	"testing"
)

func TestNamespacePrefix_IsAValidDNSLabelStart(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "TestFoo", want: "t-testfoo-"},
		{name: "subtest and symbols collapse to single dashes", in: "TestFoo/sub_case#01", want: "t-testfoo-sub-case-01-"},
		{name: "trailing symbol", in: "TestFoo/", want: "t-testfoo-"},
		{name: "long names are truncated", in: "TestAVeryLongTestNameThatKeepsGoingAndGoingForever", want: "t-testaverylongtestnamethatkeepsgoingan-"},
	}
	label := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := namespacePrefix(tc.in)
			if got != tc.want {
				t.Fatalf("namespacePrefix(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if len(got) > maxPrefix {
				t.Fatalf("prefix %q longer than %d", got, maxPrefix)
			}
			if name := got + "abcde"; len(name) > 63 || !label.MatchString(name) {
				t.Fatalf("generated name %q is not a DNS label", name)
			}
		})
	}
}
