package buildinfo

import (
	"encoding/json"
	"runtime/debug"
	"testing"
)

func TestNew_IsExactlyTheReferenceBody(t *testing.T) {
	body, err := json.Marshal(New())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"module":"build-metadata","status":"enabled"}`; string(body) != want {
		t.Errorf("JSON = %s, want %s", body, want)
	}
}

func TestResolveVersion_FallsBackFromExplicitToBuildInfoToUnknown(t *testing.T) {
	withMain := func(v string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Main: debug.Module{Version: v}}, true }
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	tests := []struct {
		name     string
		explicit string
		read     func() (*debug.BuildInfo, bool)
		want     string
	}{
		{"explicit wins", "1.2.3", withMain("v9.9.9"), "1.2.3"},
		{"build info version", "", withMain("v0.17.0"), "v0.17.0"},
		{"source build", "", withMain("(devel)"), "(devel)"},
		{"build info without version", "", withMain(""), UnknownVersion},
		{"no build info", "", none, UnknownVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolveVersion(tt.explicit, tt.read); got != tt.want {
				t.Errorf("resolveVersion = %q, want %q", got, tt.want)
			}
		})
	}
}
