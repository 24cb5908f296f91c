package benchutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
)

// RunChild runs the test named test of the running test binary in a child process, with env
// ("NAME=value") added to this process's environment, so that a measurement (peak memory above
// all) is that process's own. It returns what the child printed (stdout and stderr together) and
// the child's peak resident size in MiB (0 where the system does not report it); a child that
// fails is an error that carries its output.
func RunChild(test string, env ...string) (out string, peakMiB float64, err error) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return buf.String(), 0, fmt.Errorf("%s: %w\n%s", test, err, buf.String())
	}
	return buf.String(), processPeakMiB(cmd.ProcessState), nil
}
