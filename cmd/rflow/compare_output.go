package main

import "strings"

// commandLine renders the invocation for report.md, quoting what needs it.
func commandLine(args []string) string {
	parts := []string{"rflow", "compare"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\|&;<>()*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
