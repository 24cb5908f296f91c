package main

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/internal/ort"
)

func TestSessionFlags(t *testing.T) {
	for _, c := range []struct {
		args       []string
		env        map[string]string
		spin, low  bool
		cached     bool
		maxBytes   int64
		wantErrStr bool
	}{
		{args: nil, cached: true},
		{args: []string{"--spin", "--low-mem"}, spin: true, low: true, cached: true},
		{args: []string{"--no-cache"}},
		{env: map[string]string{ort.NoCacheEnv: "1"}},
		{env: map[string]string{ort.NoCacheEnv: "0"}, cached: true},
		{args: []string{"--cache-max-gb", "0.5"}, cached: true, maxBytes: 1 << 29},
		{args: []string{"--cache-max-gb", "-1"}, cached: true, maxBytes: -1},
		{env: map[string]string{cacheMaxEnv: "4"}, cached: true, maxBytes: 4 << 30},
		{args: []string{"--cache-max-gb", "1"}, env: map[string]string{cacheMaxEnv: "4"}, cached: true, maxBytes: 1 << 30},
		{env: map[string]string{cacheMaxEnv: "lots"}, wantErrStr: true},
	} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		f := addSessionFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		var so ort.SessionOptions
		err := f.apply(&so, func(k string) string { return c.env[k] })
		if (err != nil) != c.wantErrStr {
			t.Errorf("%v %v: error %v", c.args, c.env, err)
			continue
		}
		if err != nil {
			continue
		}
		if so.Spinning != c.spin || so.LowMem != c.low || (so.CacheDir != "") != c.cached || so.CacheMaxBytes != c.maxBytes {
			t.Errorf("%v %v: got %+v", c.args, c.env, so)
		}
	}
}
