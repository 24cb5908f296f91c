//go:build race

package exportquant

// raceEnabled: the race detector multiplies memory use, so peak-RSS bounds do not hold under it.
const raceEnabled = true
