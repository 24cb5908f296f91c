//go:build !race

package exportquant

const raceEnabled = false
