package config

import (
	"os"
	"strings"
	"testing"
)

const (
	readmePath       = "../../README.md"
	tableStartMarker = "<!-- config-table:start -->\n"
	tableEndMarker   = "<!-- config-table:end -->"
)

// TestREADME_ConfigurationTableMatchesThePropertyTable keeps the README's configuration table
// generated from the property table; `make docs` (UPDATE_README=1) rewrites it.
func TestREADME_ConfigurationTableMatchesThePropertyTable(t *testing.T) {
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, tableStartMarker)
	end := strings.Index(readme, tableEndMarker)
	if start < 0 || end < start {
		t.Fatalf("README.md lacks the %q ... %q markers", tableStartMarker, tableEndMarker)
	}
	start += len(tableStartMarker)
	want := MarkdownTable()
	if !strings.HasSuffix(want, "\n") {
		want += "\n"
	}
	if readme[start:end] == want {
		return
	}
	if os.Getenv("UPDATE_README") == "1" {
		updated := readme[:start] + want + readme[end:]
		if err := os.WriteFile(readmePath, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md configuration table is out of date: run `make docs`")
}
