// Command word-stats is an example nanofaas function served by fnruntime: it counts the words
// of a text and reports the most frequent ones.
//
// Input: {"text": "...", "topN": 5} (topN defaults to 10), or a bare JSON string as the text.
// Output: {"wordCount","uniqueWords","topWords":[{"word","count"}],"averageWordLength"}, or
// {"error": "..."} for unusable input (a domain error: the invocation itself succeeds).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/nanofaas/control-plane/fnruntime"
)

func main() {
	if err := fnruntime.Serve(context.Background(), handle); err != nil {
		slog.Error("word-stats stopped", "error", err)
		os.Exit(1)
	}
}

func handle(_ context.Context, req fnruntime.Request) (any, error) {
	return Analyze(req.Input), nil
}
