package buildinfo

import (
	"encoding/json"
	"runtime/debug"
	"slices"
	"testing"

	"github.com/nanofaas/control-plane/internal/modules"
)

func TestNew_ReportsReferenceFieldsVersionAndLoadedModules(t *testing.T) {
	set, err := modules.Parse("sync-queue,build-metadata")
	if err != nil {
		t.Fatal(err)
	}
	got := New("0.17.0", set)
	want := Metadata{
		Module: "build-metadata", Status: "enabled", Version: "0.17.0",
		Modules: []string{"async-queue", "build-metadata", "sync-queue"},
	}
	if got.Module != want.Module || got.Status != want.Status || got.Version != want.Version || !slices.Equal(got.Modules, want.Modules) {
		t.Fatalf("New = %+v, want %+v", got, want)
	}
	body, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"module":"build-metadata","status":"enabled","version":"0.17.0","modules":["async-queue","build-metadata","sync-queue"]}`
	if string(body) != wantJSON {
		t.Errorf("JSON = %s, want %s", body, wantJSON)
	}
}

func TestNew_EmptyModuleSetIsAnEmptyListNotNull(t *testing.T) {
	body, err := json.Marshal(New("v1", modules.None()))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"module":"build-metadata","status":"enabled","version":"v1","modules":[]}`; string(body) != want {
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
