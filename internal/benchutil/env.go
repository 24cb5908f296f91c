package benchutil

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// EnvInt is the positive integer in the environment variable name, or def when it is unset; any
// other value stops the benchmark (a mistyped setting must not measure the default silently).
func EnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// EnvInts is the comma-separated positive integers in the environment variable name ("512,1024"),
// or def when it is unset; any other value stops the benchmark.
func EnvInts(tb testing.TB, name string, def []int) []int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			tb.Fatalf("%s=%q: want positive integers separated by commas", name, s)
		}
		out = append(out, n)
	}
	return out
}
