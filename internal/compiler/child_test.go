package compiler_test

const childEnv = "RFLOW_COMPILER_TEST_CHILD"

func runChild(kind string, args []string) int { return 2 }
