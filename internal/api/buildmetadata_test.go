package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nanofaas/control-plane/internal/api"
	"github.com/nanofaas/control-plane/internal/buildinfo"
)

func TestBuildMetadata_GetReturnsTheReferenceBody(t *testing.T) {
	h := api.NewAPIHandler(api.Deps{Routes: api.BuildMetadataRoutes(buildinfo.New())})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/modules/build-metadata", nil))
	const want = `{"module":"build-metadata","status":"enabled"}`
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != want {
		t.Errorf("GET = %d %q %s, want 200 application/json %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, want)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/modules/build-metadata", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET" {
		t.Errorf("POST = %d Allow %q, want 405 Allow GET", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestBuildMetadata_AbsentWhenModuleNotLoaded(t *testing.T) {
	rec := httptest.NewRecorder()
	api.NewAPIHandler(api.Deps{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/modules/build-metadata", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET without the module = %d, want 404", rec.Code)
	}
}
