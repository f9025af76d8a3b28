package execution

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
)

// Lookup is the result of Factory.CreateOrReuse: a NEW execution (put in the store, not yet
// admitted, holding the idempotency claim when keyed) or an EXISTING one to replay or join.
type Lookup struct {
	Record *Record
	isNew  bool
	fn     string
	key    string
	token  ClaimToken // 0 = no claim (unkeyed request)
}

// IsNew reports whether the execution was created by this lookup and still needs admission.
func (l Lookup) IsNew() bool { return l.isNew }

// Factory is the InvocationExecutionFactory: it creates executions, or reuses the one
// published under the request's Idempotency-Key (spec-core §6.4).
type Factory struct {
	store *Store
	idem  *IdempotencyStore
	ids   *IDGenerator
	now   func() time.Time
	log   *slog.Logger
}

// NewFactory returns a factory creating records in store and deduplicating keyed requests
// through idem. now (nil = time.Now) stamps enqueuedAt and is the records' clock; log (nil =
// slog.Default()) is given to the records.
func NewFactory(store *Store, idem *IdempotencyStore, now func() time.Time, log *slog.Logger) *Factory {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Factory{store: store, idem: idem, ids: NewIDGenerator(nil), now: now, log: log}
}

// CreateOrReuse returns a NEW execution for an unkeyed request (blank key), or for a keyed
// one whose key is free (claiming it); otherwise the EXISTING published execution. While
// another request holds the key's pending claim it waits for that claim to be published
// (→ EXISTING) or abandoned (→ a replacement), giving up with ctx.Err() when ctx ends. A key
// mapped to an evicted execution is re-claimed so that exactly one replacement is created.
// spec must be the resolved spec snapshot; req and traceID are stored on the task as given.
func (f *Factory) CreateOrReuse(ctx context.Context, fn string, spec *function.Spec, req *Request, key string, traceID *string) (Lookup, error) {
	if strings.TrimSpace(key) == "" {
		return f.create(fn, spec, req, "", traceID, 0), nil
	}
	for {
		c := f.idem.AcquireOrGet(fn, key)
		if c.Status == ClaimExisting {
			if rec, ok := f.store.Get(c.ExecutionID); ok {
				return Lookup{Record: rec, fn: fn, key: key}, nil
			}
			// Stale mapping: the execution was evicted. Only one contender wins the CAS.
			c = f.idem.ClaimIfMatches(fn, key, c.ExecutionID)
		}
		switch c.Status {
		case ClaimClaimed:
			return f.create(fn, spec, req, key, traceID, c.Token), nil
		case ClaimPending:
			select {
			case <-c.Released:
			case <-ctx.Done():
				return Lookup{}, ctx.Err()
			}
		}
		// ClaimExisting (another id) / ClaimMissing / released: look again.
	}
}

func (f *Factory) create(fn string, spec *function.Spec, req *Request, key string, traceID *string, token ClaimToken) Lookup {
	rec := &Record{}
	rec.init(Task{
		ExecutionID:    f.ids.NewID(),
		FunctionName:   fn,
		Spec:           spec,
		Request:        req,
		IdempotencyKey: key,
		TraceID:        traceID,
		EnqueuedAt:     f.now(),
		Attempt:        1,
	}, f.now, f.log)
	f.store.Put(rec)
	return Lookup{Record: rec, isNew: true, fn: fn, key: key, token: token}
}

// AdmitIfNew runs admit for a NEW lookup; EXISTING lookups skip it and return nil. When admit
// succeeds the claim is published (key → execution id). When it fails or panics the new
// record is removed from the store and the claim abandoned, so neither survives, and admit's
// error (or panic) is passed on. If the claim vanished meanwhile (it expired during a very
// long admission), the already-admitted execution is kept and a *MissingClaimError returned.
func (f *Factory) AdmitIfNew(l Lookup, admit func() error) (err error) {
	if !l.isNew {
		return nil
	}
	admitted := false
	defer func() {
		if admitted {
			return
		}
		f.store.Remove(l.Record.id)
		if l.token != 0 {
			f.idem.AbandonClaim(l.fn, l.key, l.token)
		}
	}()
	if err := admit(); err != nil {
		return err
	}
	admitted = true
	if l.token != 0 {
		return f.idem.PublishClaim(l.fn, l.key, l.token, l.Record.id)
	}
	return nil
}
