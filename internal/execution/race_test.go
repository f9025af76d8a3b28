//go:build race

package execution

// raceEnabled skips allocation counts: under the race detector sync.Pool (used by
// encoding/json's validator) drops items at random, so counts vary.
const raceEnabled = true
