// Package buildinfo owns the build-metadata module (spec-modules §8): the body served at
// GET /modules/build-metadata, exactly the reference's, and the binary's version as the
// control plane logs it at start-up. The HTTP handler lives in package api.
package buildinfo

import "runtime/debug"

// Path is where the module is served on the API listener.
const Path = "/modules/build-metadata"

// UnknownVersion is reported when neither the caller nor the Go build info knows a version.
const UnknownVersion = "unknown"

// Metadata is the body of GET /modules/build-metadata.
type Metadata struct {
	Module string `json:"module"`
	Status string `json:"status"`
}

// New returns the reference's body: {"module":"build-metadata","status":"enabled"}.
func New() Metadata {
	return Metadata{Module: "build-metadata", Status: "enabled"}
}

// Version is the binary's version: explicit when set (release builds pass -X main.version),
// else the main module's version from the Go build info ("(devel)" for a source build), else
// UnknownVersion.
func Version(explicit string) string {
	return resolveVersion(explicit, debug.ReadBuildInfo)
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
