#!/usr/bin/env bash
# Runs the real-Slurm test (deploy/slurm_test.go): installs Debian's slurm-wlm and munge when they are
# missing (apt-get, as root), then starts a loopback single-node cluster with its own config and state
# folder, runs deploy/slurm/batch.sbatch as a 3-task array on the demo model, kills one task, resubmits
# only that index and checks with rflow batch status. The test stops every daemon it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "cluster-test: $*" >&2; exit 1; }

need=()
for tool in munged slurmctld slurmd sbatch; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${need[*]}: run as root to install slurm-wlm and munge, or install them yourself"
  command -v apt-get >/dev/null 2>&1 || die "missing ${need[*]} and no apt-get: install Slurm and MUNGE yourself"
  echo "cluster-test: installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
fi
[ "$(id -u)" = 0 ] || die "the loopback cluster runs munged, slurmctld and slurmd as root"

RFLOW_TEST_CLUSTER=1 ${GO:-go} test -count=1 -run '^TestSlurm' -v -timeout 15m ./deploy
