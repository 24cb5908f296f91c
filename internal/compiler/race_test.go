//go:build race

package compiler_test

// raceEnabled: the race detector multiplies memory use, so peak-RSS bounds do not hold under it.
const raceEnabled = true
