// Command gen writes the embedded demo model folders (assets/demo-sd3, assets/demo-flux). Run it
// through `go generate ./assets`; the output is deterministic.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/rflowrt/rflow/assets/internal/build"
)

func main() {
	out := flag.String("o", ".", "directory that receives demo-sd3/ and demo-flux/")
	flag.Parse()
	if err := build.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
