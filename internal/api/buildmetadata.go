package api

import (
	"net/http"

	"github.com/nanofaas/control-plane/internal/buildinfo"
)

// BuildMetadataRoutes returns GET /modules/build-metadata (spec-modules §8), answering md. The
// caller includes it only when the build-metadata module is loaded.
func BuildMetadataRoutes(md buildinfo.Metadata) []Route {
	return []Route{{
		Pattern: buildinfo.Path,
		Methods: map[string]http.HandlerFunc{
			http.MethodGet: func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, md) },
		},
	}}
}
