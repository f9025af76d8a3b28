// Package execution owns the life of one invocation inside the control plane: the DTOs
// (Request, Result, Task) and the Jackson-like decoding of the request and callback bodies,
// execution ids, the ExecutionRecord state machine with its one-shot completion signal, the
// in-memory ExecutionStore and its janitor, the idempotency store (function, key) →
// execution, and the factory that creates or reuses executions under an
// Idempotency-Key (spec-core §6.1–§6.4, §6.11; DECISIONS D5, D21). It does not dispatch,
// queue or record metrics; those belong to the service layers that use it.
package execution
