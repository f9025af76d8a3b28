package fnruntime_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/nanofaas/control-plane/fnruntime"
)

// A function is a Handler; fnruntime.Serve runs it with the settings the control plane
// injects (PORT, TIMEOUT_MS, CALLBACK_URL). Here the runtime is driven in-process instead.
func Example() {
	greet := func(_ context.Context, req fnruntime.Request) (any, error) {
		var in struct {
			Name string `json:"name"`
		}
		if err := req.Decode(&in); err != nil {
			return nil, err
		}
		return map[string]string{"greeting": "hello " + in.Name}, nil
	}
	rt := fnruntime.New(greet, fnruntime.Config{})
	defer rt.Close(context.Background())

	req := httptest.NewRequest(http.MethodPost, "/invoke", strings.NewReader(`{"input":{"name":"ada"}}`))
	req.Header.Set("X-Execution-Id", "e-1")
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())
	// Output: 200 {"greeting":"hello ada"}
}
