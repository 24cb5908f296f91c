package deploy

import "syscall"

// syscallTERM is SIGTERM (the daemons' orderly stop).
var syscallTERM = syscall.SIGTERM
