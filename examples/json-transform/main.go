// Command json-transform is an example nanofaas function served by fnruntime: it groups an array
// of JSON objects by a field and aggregates each group.
//
// Input (the shape of the reference's json-transform and of its load profile):
//
//	{"data": [{"dept": "eng", "salary": 80000}, ...],
//	 "groupBy": "dept",
//	 "operation": "count|sum|avg|min|max",   (default count)
//	 "valueField": "salary"}                  (required unless operation is count)
//
// Output: {"groupBy","operation","groups":{"<key>": <value>, ...}} with groups in first-seen
// order, or {"error": "..."} for unusable input (a domain error: the invocation succeeds).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/nanofaas/control-plane/fnruntime"
)

func main() {
	if err := fnruntime.Serve(context.Background(), handle); err != nil {
		slog.Error("json-transform stopped", "error", err)
		os.Exit(1)
	}
}

func handle(_ context.Context, req fnruntime.Request) (any, error) {
	return Transform(req.Input), nil
}
