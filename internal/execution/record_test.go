package execution

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

func TestState_StringAndTerminal(t *testing.T) {
	tests := []struct {
		s        State
		want     string
		terminal bool
	}{
		{StateQueued, "queued", false},
		{StateRunning, "running", false},
		{StateSuccess, "success", true},
		{StateError, "error", true},
		{StateTimeout, "timeout", true},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", tt.s, got, tt.want)
		}
		if got := tt.s.Terminal(); got != tt.terminal {
			t.Errorf("%s.Terminal() = %v, want %v", tt.want, got, tt.terminal)
		}
	}
}

func TestRecord_NewRecordIsQueuedWithItsTask(t *testing.T) {
	clock := newFakeClock()
	r := newTestRecord(clock)
	s := r.Snapshot()
	if s.State != StateQueued || s.ExecutionID != "exec-1" || s.Attempt != 1 || s.FunctionName != "echo" {
		t.Fatalf("unexpected initial snapshot %+v", s)
	}
	if !s.StartedAt.IsZero() || !s.FinishedAt.IsZero() || !s.DispatchedAt.IsZero() {
		t.Fatalf("times must be unset initially: %+v", s)
	}
	if r.Task().ExecutionID != "exec-1" || r.ID() != "exec-1" {
		t.Fatalf("task/id mismatch")
	}
}

func TestRecord_AllowedTransitionsFromNonTerminalStates(t *testing.T) {
	retry := &Task{ExecutionID: "exec-1", FunctionName: "echo", Attempt: 2}
	steps := map[string]func(r *Record) bool{
		"running": (*Record).MarkRunning,
		"success": func(r *Record) bool { return r.MarkSuccess(json.RawMessage(`"ok"`)) },
		"error":   func(r *Record) bool { return r.MarkError(&ErrorInfo{Code: "X", Message: "m"}) },
		"timeout": (*Record).MarkTimeout,
		"reset":   func(r *Record) bool { return r.ResetForRetry(retry) },
	}
	tests := []struct {
		path []string
		want State
	}{
		{[]string{"running", "success"}, StateSuccess},
		{[]string{"running", "error"}, StateError},
		{[]string{"running", "timeout"}, StateTimeout},
		{[]string{"success"}, StateSuccess},
		{[]string{"error"}, StateError},
		{[]string{"timeout"}, StateTimeout},
		{[]string{"running", "reset"}, StateQueued},
		{[]string{"running", "running"}, StateRunning},
		{[]string{"running", "reset", "running", "success"}, StateSuccess},
	}
	for _, tt := range tests {
		r := newTestRecord(newFakeClock())
		for _, step := range tt.path {
			if !steps[step](r) {
				t.Fatalf("path %v: step %q was rejected", tt.path, step)
			}
		}
		if got := r.State(); got != tt.want {
			t.Errorf("path %v: state %s, want %s", tt.path, got, tt.want)
		}
	}
}

func TestRecord_TerminalStatesIgnoreFurtherMarks(t *testing.T) {
	finish := map[State]func(r *Record){
		StateSuccess: func(r *Record) { r.MarkSuccess(json.RawMessage(`1`)) },
		StateError:   func(r *Record) { r.MarkError(&ErrorInfo{Code: "E", Message: "boom"}) },
		StateTimeout: func(r *Record) { r.MarkTimeout() },
	}
	for state, fin := range finish {
		t.Run(state.String(), func(t *testing.T) {
			clock := newFakeClock()
			r := newTestRecord(clock)
			r.MarkRunning()
			fin(r)
			before := r.Snapshot()
			clock.Advance(time.Second)
			rejected := []struct {
				op string
				ok bool
			}{
				{"markRunning", r.MarkRunning()},
				{"markSuccess", r.MarkSuccess(json.RawMessage(`2`))},
				{"markError", r.MarkError(&ErrorInfo{Code: "LATE"})},
				{"markTimeout", r.MarkTimeout()},
				{"resetForRetry", r.ResetForRetry(&Task{Attempt: 2})},
			}
			for _, op := range rejected {
				if op.ok {
					t.Errorf("%s on %s record was applied", op.op, state)
				}
			}
			if after := r.Snapshot(); !snapshotsEqual(before, after) {
				t.Fatalf("terminal record changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if r.Task().Attempt != 1 {
				t.Fatalf("task replaced on terminal record")
			}
		})
	}
}

func snapshotsEqual(a, b Snapshot) bool {
	return a.State == b.State && a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt) &&
		string(a.Output) == string(b.Output) && a.Error == b.Error && a.Attempt == b.Attempt &&
		a.ColdStart == b.ColdStart && a.InitDurationMs == b.InitDurationMs
}

func TestRecord_MarksStampTimesFromTheClock(t *testing.T) {
	clock := newFakeClock()
	r := newTestRecord(clock)
	t0 := clock.Now()
	r.MarkRunning()
	r.MarkDispatchedAt()
	clock.Advance(time.Second)
	r.MarkRunning() // RUNNING→RUNNING overwrites startedAt
	clock.Advance(2 * time.Second)
	r.MarkSuccess(json.RawMessage(`"done"`))
	s := r.Snapshot()
	if !s.StartedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("startedAt = %v, want overwritten %v", s.StartedAt, t0.Add(time.Second))
	}
	if !s.DispatchedAt.Equal(t0) {
		t.Errorf("dispatchedAt = %v, want %v", s.DispatchedAt, t0)
	}
	if !s.FinishedAt.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("finishedAt = %v, want %v", s.FinishedAt, t0.Add(3*time.Second))
	}
	if string(s.Output) != `"done"` || s.Error != nil {
		t.Errorf("output/error = %s/%v", s.Output, s.Error)
	}
}

func TestRecord_MarkErrorStoresErrorAndClearsOutput(t *testing.T) {
	r := newTestRecord(newFakeClock())
	r.WithLock(func(l *Locked) { l.output = json.RawMessage(`"partial"`) })
	r.MarkError(&ErrorInfo{Code: "POOL_ERROR", Message: "down"})
	s := r.Snapshot()
	if s.State != StateError || s.Output != nil || s.Error == nil || s.Error.Code != "POOL_ERROR" {
		t.Fatalf("unexpected snapshot %+v", s)
	}
}

func TestRecord_MarkErrorWithoutDetailsStoresFunctionError(t *testing.T) {
	r := newTestRecord(newFakeClock())
	r.MarkError(nil)
	s := r.Snapshot()
	want := ErrorInfo{Code: "FUNCTION_ERROR", Message: "function reported failure without error details"}
	if s.Error == nil || *s.Error != want {
		t.Fatalf("error = %+v, want %+v", s.Error, want)
	}
	res, timedOut, ok := r.TerminalResult()
	if !ok || timedOut || res.Success || res.Error == nil || *res.Error != want {
		t.Fatalf("replay = %+v timedOut=%v ok=%v; want an error result", res, timedOut, ok)
	}
}

func TestRecord_MarkTimeoutLeavesOutputAndErrorNull(t *testing.T) {
	r := newTestRecord(newFakeClock())
	r.MarkRunning()
	r.MarkTimeout()
	s := r.Snapshot()
	if s.State != StateTimeout || s.Output != nil || s.Error != nil || s.FinishedAt.IsZero() {
		t.Fatalf("unexpected snapshot %+v", s)
	}
}

func TestRecord_ResetForRetryClearsAttemptFactsButKeepsReleasedSlots(t *testing.T) {
	r := newTestRecord(newFakeClock())
	r.MarkRunning()
	r.MarkDispatchedAt()
	r.MarkColdStart(250)
	if !r.MarkDispatchSlotReleased(1) {
		t.Fatal("first release of attempt 1 refused")
	}
	next := &Task{ExecutionID: "exec-1", FunctionName: "echo", Attempt: 2}
	if !r.ResetForRetry(next) {
		t.Fatal("reset refused on running record")
	}
	s := r.Snapshot()
	if s.State != StateQueued || s.Attempt != 2 || r.Task() != next {
		t.Fatalf("reset did not install the retry task: %+v", s)
	}
	if !s.StartedAt.IsZero() || !s.FinishedAt.IsZero() || !s.DispatchedAt.IsZero() ||
		s.ColdStart || s.InitDurationMs != nil || s.Output != nil || s.Error != nil || s.Cleaned {
		t.Fatalf("reset left attempt facts behind: %+v", s)
	}
	if r.MarkDispatchSlotReleased(1) {
		t.Fatal("released set must survive reset: attempt 1 released twice")
	}
	if !r.MarkDispatchSlotReleased(2) {
		t.Fatal("attempt 2 must be releasable once")
	}
}

func TestRecord_MarkColdStartWorksOnTerminalRecord(t *testing.T) {
	r := newTestRecord(newFakeClock())
	r.MarkSuccess(json.RawMessage(`1`))
	r.MarkColdStart(0)
	s := r.Snapshot()
	if !s.ColdStart || s.InitDurationMs == nil || *s.InitDurationMs != 0 {
		t.Fatalf("cold start not recorded on terminal record: %+v", s)
	}
}

func TestRecord_MarkDispatchSlotReleasedTrueOnlyOncePerAttempt(t *testing.T) {
	r := newTestRecord(newFakeClock())
	for _, attempt := range []int{1, 2, 64, 65, 1000, 0, -1} {
		if !r.MarkDispatchSlotReleased(attempt) {
			t.Errorf("attempt %d: first release refused", attempt)
		}
		if r.MarkDispatchSlotReleased(attempt) {
			t.Errorf("attempt %d: second release accepted", attempt)
		}
	}
}

func TestRecord_CleanupDropsPayloadsKeepsTaskAndIsIdempotent(t *testing.T) {
	r := newTestRecord(newFakeClock())
	orig := r.Task()
	r.MarkSuccess(json.RawMessage(`"big"`))
	if !r.Cleanup() {
		t.Fatal("first cleanup reported nothing to do")
	}
	s := r.Snapshot()
	task := r.Task()
	if s.Output != nil || !s.Cleaned || task.Request != nil {
		t.Fatalf("cleanup kept payloads: output=%s request=%v", s.Output, task.Request)
	}
	if task.ExecutionID != "exec-1" || task.FunctionName != "echo" || task.Attempt != 1 || *task.TraceID != "trace-1" {
		t.Fatalf("cleanup lost task fields: %+v", task)
	}
	if orig.Request == nil {
		t.Fatal("cleanup mutated the shared original task instead of copying it")
	}
	if r.Cleanup() {
		t.Fatal("second cleanup reported work")
	}
	if s2 := r.Snapshot(); s2.State != StateSuccess || s2.Output != nil {
		t.Fatalf("second cleanup changed state: %+v", s2)
	}
	res, _, ok := r.TerminalResult()
	if !ok || !res.Success || res.Output != nil {
		t.Fatalf("replay after cleanup = %+v, want success with null output", res)
	}
}

func TestRecord_TerminalResultMapsStatesForReplay(t *testing.T) {
	tests := []struct {
		name         string
		apply        func(r *Record)
		wantOK       bool
		wantTimedOut bool
		wantSuccess  bool
		wantOutput   string
		wantCode     string
	}{
		{"queued", func(*Record) {}, false, false, false, "", ""},
		{"running", func(r *Record) { r.MarkRunning() }, false, false, false, "", ""},
		{"success", func(r *Record) { r.MarkSuccess(json.RawMessage(`{"a":1}`)) }, true, false, true, `{"a":1}`, ""},
		{"error", func(r *Record) { r.MarkError(&ErrorInfo{Code: "POOL_ERROR", Message: "x"}) }, true, false, false, "", "POOL_ERROR"},
		{"timeout", func(r *Record) { r.MarkTimeout() }, true, true, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRecord(newFakeClock())
			tt.apply(r)
			res, timedOut, ok := r.TerminalResult()
			if ok != tt.wantOK || timedOut != tt.wantTimedOut || res.Success != tt.wantSuccess || string(res.Output) != tt.wantOutput {
				t.Fatalf("TerminalResult() = %+v, %v, %v", res, timedOut, ok)
			}
			code := ""
			if res.Error != nil {
				code = res.Error.Code
			}
			if code != tt.wantCode {
				t.Fatalf("error code = %q, want %q", code, tt.wantCode)
			}
		})
	}
}

func TestRecord_CompleteClosesDoneExactlyOnce(t *testing.T) {
	r := newTestRecord(newFakeClock())
	if _, ok := r.Outcome(); ok {
		t.Fatal("outcome available before completion")
	}
	first := SuccessResult(json.RawMessage(`1`))
	if !r.Complete(first) {
		t.Fatal("first Complete returned false")
	}
	if r.Complete(ErrorResult("LATE", "late")) {
		t.Fatal("second Complete returned true")
	}
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after Complete")
	}
	got, ok := r.Outcome()
	if !ok || !got.Success || string(got.Output) != "1" {
		t.Fatalf("Outcome() = %+v, %v; want the first result", got, ok)
	}
}

func TestRecord_ConcurrentCompleteHasOneWinnerAndWakesAllWaiters(t *testing.T) {
	r := newTestRecord(newFakeClock())
	const n = 20
	var wg sync.WaitGroup
	wins := make(chan int, n)
	woken := make(chan Result, n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-r.Done()
			res, _ := r.Outcome()
			woken <- res
		}()
		go func() {
			defer wg.Done()
			if r.Complete(ErrorResult("E", string(rune('a'+i)))) {
				wins <- i
			}
		}()
	}
	wg.Wait()
	close(wins)
	close(woken)
	if len(wins) != 1 {
		t.Fatalf("%d Complete calls won, want 1", len(wins))
	}
	winner, _ := r.Outcome()
	for res := range woken {
		if res.Error.Message != winner.Error.Message {
			t.Fatalf("waiter saw %q, winner published %q", res.Error.Message, winner.Error.Message)
		}
	}
}

func TestRecord_WaiterTimingOutDoesNotCloseSharedCompletion(t *testing.T) {
	r := newTestRecord(newFakeClock())
	timer := time.NewTimer(time.Millisecond)
	select {
	case <-r.Done():
		t.Fatal("completion closed before Complete")
	case <-timer.C: // this waiter gives up
	}
	select {
	case <-r.Done():
		t.Fatal("a waiter's timeout closed the shared completion")
	default:
	}
	if !r.Complete(SuccessResult(json.RawMessage(`"late"`))) {
		t.Fatal("completion unusable after a waiter timed out")
	}
	<-r.Done()
	if res, ok := r.Outcome(); !ok || string(res.Output) != `"late"` {
		t.Fatalf("later waiter got %+v, %v", res, ok)
	}
}

func TestRecord_WithLockSupportsCompletionHandlerDecision(t *testing.T) {
	clock := newFakeClock()
	r := newTestRecord(clock)
	r.MarkRunning()
	clock.Advance(40 * time.Millisecond)
	var released, stale bool
	var startedAt, finishedAt time.Time
	r.WithLock(func(l *Locked) {
		cur := l.Task()
		if cur.Attempt != 1 {
			stale = true
			return
		}
		released = l.MarkDispatchSlotReleased(cur.Attempt)
		if l.State().Terminal() {
			return
		}
		startedAt = l.StartedAt()
		l.MarkSuccess(json.RawMessage(`"ok"`))
		finishedAt = l.FinishedAt()
		l.MarkColdStart(12)
	})
	if stale || !released {
		t.Fatalf("stale=%v released=%v", stale, released)
	}
	if got := finishedAt.Sub(startedAt); got != 40*time.Millisecond {
		t.Fatalf("latency %v, want 40ms", got)
	}
	s := r.Snapshot()
	if s.State != StateSuccess || !s.ColdStart || *s.InitDurationMs != 12 {
		t.Fatalf("decision not applied: %+v", s)
	}
}

func TestRecord_SnapshotIsConsistentUnderConcurrentMutation(t *testing.T) {
	clock := newFakeClock()
	r := newTestRecord(clock)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for attempt := 2; ; attempt++ {
			select {
			case <-stop:
				return
			default:
			}
			r.MarkRunning()
			r.MarkDispatchedAt()
			r.ResetForRetry(&Task{ExecutionID: "exec-1", FunctionName: "echo", Attempt: attempt})
		}
	}()
	for range 2000 {
		s := r.Snapshot()
		switch s.State {
		case StateQueued:
			if !s.StartedAt.IsZero() || !s.DispatchedAt.IsZero() {
				t.Fatalf("queued snapshot with startedAt/dispatchedAt: %+v", s)
			}
		case StateRunning:
			if s.StartedAt.IsZero() {
				t.Fatalf("running snapshot without startedAt: %+v", s)
			}
		default:
			t.Fatalf("unexpected state %s", s.State)
		}
	}
	close(stop)
	wg.Wait()
}

func TestSnapshot_StatusSerializesContractShape(t *testing.T) {
	clock := newFakeClock()
	r := newTestRecord(clock)

	b, err := json.Marshal(r.Snapshot().Status())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"executionId":"exec-1","status":"queued","startedAt":null,"finishedAt":null,"output":null,"error":null,"coldStart":false,"initDurationMs":null}`
	if string(b) != want {
		t.Fatalf("queued status\n got %s\nwant %s", b, want)
	}

	r.MarkRunning()
	clock.Advance(1500 * time.Millisecond)
	r.MarkSuccess(json.RawMessage(`{"y":2}`))
	r.MarkColdStart(250)
	b, err = json.Marshal(r.Snapshot().Status())
	if err != nil {
		t.Fatal(err)
	}
	want = `{"executionId":"exec-1","status":"success","startedAt":"2025-03-01T12:00:00Z","finishedAt":"2025-03-01T12:00:01.5Z","output":{"y":2},"error":null,"coldStart":true,"initDurationMs":250}`
	if string(b) != want {
		t.Fatalf("success status\n got %s\nwant %s", b, want)
	}

	e := NewRecord(Task{ExecutionID: "e2", Attempt: 1}, func() time.Time {
		return time.Date(2025, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	}, discardLogger())
	e.MarkError(&ErrorInfo{Code: "POOL_ERROR", Message: "down"})
	b, err = json.Marshal(e.Snapshot().Status())
	if err != nil {
		t.Fatal(err)
	}
	want = `{"executionId":"e2","status":"error","startedAt":null,"finishedAt":"2025-03-01T12:00:00Z","output":null,"error":{"code":"POOL_ERROR","message":"down"},"coldStart":false,"initDurationMs":null}`
	if string(b) != want {
		t.Fatalf("error status\n got %s\nwant %s", b, want)
	}
}
