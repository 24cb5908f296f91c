package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// strayArgsError explains arguments that belong to no flag. Every rflow subcommand takes flags only,
// so a stray word is nearly always the rest of an unquoted value: -p a red star.
func strayArgsError(fs *pflag.FlagSet, args []string) error {
	if fs.NArg() == 0 {
		return nil
	}
	flag, value, stray := firstStray(fs, args)
	if len(stray) == 0 { // pflag saw one where this walk did not: name them without the hint
		flag, stray = "", fs.Args()
	}
	quoted := make([]string, len(stray))
	for i, s := range stray {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	what := "unexpected argument"
	if len(stray) > 1 {
		what += "s"
	}
	msg := fmt.Sprintf("%s %s", what, strings.Join(quoted, " "))
	if flag != "" && !textFlag(lookupFlag(fs, flag)) {
		flag = "" // "--steps 8 16": no quoting helps
	}
	if flag != "" {
		return fmt.Errorf("%s after %s %s: quote a value that has spaces: %s %q", msg, flag, value, flag,
			strings.Join(append([]string{value}, stray...), " "))
	}
	return fmt.Errorf("%s: this command takes flags only (quote a value that has spaces)", msg)
}

// firstStray finds the first run of positional arguments in args as pflag parses them, and the flag
// whose value came right before it ("" if none: the run follows a boolean flag or starts the line).
func firstStray(fs *pflag.FlagSet, args []string) (flag, value string, stray []string) {
	prevFlag, prevValue := "", ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return prevFlag, prevValue, args[i+1:]
		case strings.HasPrefix(a, "--"):
			name, v, hasValue := strings.Cut(a[2:], "=")
			prevFlag, prevValue = "", ""
			if f := fs.Lookup(name); f != nil && f.NoOptDefVal == "" && !hasValue && i+1 < len(args) {
				i++
				prevFlag, prevValue = "--"+name, args[i]
			} else if hasValue {
				prevFlag, prevValue = "--"+name, v
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			prevFlag, prevValue = "", ""
			for j := 1; j < len(a); j++ {
				f := fs.ShorthandLookup(a[j : j+1])
				if f == nil || f.NoOptDefVal != "" {
					continue
				}
				prevFlag = "-" + a[j:j+1]
				if rest := strings.TrimPrefix(a[j+1:], "="); rest != "" {
					prevValue = rest
				} else if i+1 < len(args) {
					i++
					prevValue = args[i]
				}
				break
			}
		default:
			end := i
			for end < len(args) && !strings.HasPrefix(args[end], "-") {
				end++
			}
			return prevFlag, prevValue, args[i:end]
		}
	}
	return "", "", nil
}

// textFlag reports whether a flag takes free text (a prompt, a path), which may have spaces.
func textFlag(f *pflag.Flag) bool {
	if f == nil {
		return false
	}
	t := f.Value.Type()
	return t == "string" || t == "stringArray"
}

// lookupFlag finds a flag by its spelling on the command line, "-p" or "--prompt".
func lookupFlag(fs *pflag.FlagSet, spelling string) *pflag.Flag {
	if name, ok := strings.CutPrefix(spelling, "--"); ok {
		return fs.Lookup(name)
	}
	return fs.ShorthandLookup(strings.TrimPrefix(spelling, "-"))
}
