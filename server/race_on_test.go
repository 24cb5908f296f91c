//go:build race

package server

// raceEnabled: the race detector makes a model run several times slower; the load test sends fewer
// requests under it.
const raceEnabled = true
