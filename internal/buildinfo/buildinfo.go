// Package buildinfo owns the build-metadata module (spec-modules §8): the diagnostic description
// of the running control plane served at GET /modules/build-metadata — the module's own name and
// status as the reference reports them, plus the binary's version and the modules loaded at run
// time (DECISIONS.md D6). The HTTP handler lives in package api.
package buildinfo

import (
	"runtime/debug"

	"github.com/nanofaas/control-plane/internal/modules"
)

// Path is where the module is served on the API listener.
const Path = "/modules/build-metadata"

// UnknownVersion is reported when neither the caller nor the Go build info knows a version.
const UnknownVersion = "unknown"

// Metadata is the body of GET /modules/build-metadata. Module and Status are the reference's
// whole body; Version and Modules are additions of the Go control plane.
type Metadata struct {
	Module  string   `json:"module"`
	Status  string   `json:"status"`
	Version string   `json:"version"`
	Modules []string `json:"modules"`
}

// New describes a binary of the given version running with the loaded module set. A blank
// version falls back to the main module's version from the Go build info (e.g. "v0.17.0", or
// "(devel)" for a source build), then to UnknownVersion.
func New(version string, loaded modules.Set) Metadata {
	return Metadata{
		Module:  modules.BuildMetadata,
		Status:  "enabled",
		Version: resolveVersion(version, debug.ReadBuildInfo),
		Modules: loaded.Names(),
	}
}

// resolveVersion takes the build-info reader as a parameter so tests can stand in for the
// linker-provided data.
func resolveVersion(explicit string, read func() (*debug.BuildInfo, bool)) string {
	if explicit != "" {
		return explicit
	}
	if info, ok := read(); ok && info != nil && info.Main.Version != "" {
		return info.Main.Version
	}
	return UnknownVersion
}
