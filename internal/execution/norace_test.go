//go:build !race

package execution

const raceEnabled = false
