package server

import (
	"strconv"
	"strings"
	"time"

	"github.com/rflowrt/rflow/pipeline"
)

type resolvedLike = pipeline.Resolved

func itoaU(i int) string            { return strconv.Itoa(i) }
func utoa(u uint64) string          { return strconv.FormatUint(u, 10) }
func ftoa(f float64) string         { return strconv.FormatFloat(f, 'g', -1, 64) }
func timeSince(t time.Time) float64 { return time.Since(t).Seconds() }

func orDefault(s string) string {
	if s == "" {
		return "Automatic"
	}
	return s
}

// joinKV writes A1111's "Key: value, Key: value" line.
func joinKV(kv [][2]string) string {
	parts := make([]string, 0, len(kv))
	for _, p := range kv {
		parts = append(parts, p[0]+": "+p[1])
	}
	return strings.Join(parts, ", ")
}
