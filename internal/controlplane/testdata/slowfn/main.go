// Command slowfn is a function runtime for the control plane's tests: it answers every
// invocation after SLOW_MS milliseconds, so queues build up and the autoscaler reacts.
package main

import (
	"context"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/nanofaas/control-plane/fnruntime"
)

func main() {
	delay, _ := strconv.Atoi(os.Getenv("SLOW_MS"))
	err := fnruntime.Serve(context.Background(), func(ctx context.Context, req fnruntime.Request) (any, error) {
		select {
		case <-time.After(time.Duration(delay) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return map[string]int{"pid": os.Getpid()}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
