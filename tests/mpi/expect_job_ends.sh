#!/usr/bin/env bash
# expect_job_ends.sh MPIRUN PROGRAM — runs PROGRAM on 3 ranks, one of which is killed by a task, and
# checks what a user should see: the job ends within 90 s, mpirun exits non-zero, and its message
# names the killed rank's signal.
set -u
mpirun=$1 program=$2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
timeout -k 5 90 "$mpirun" --oversubscribe -np 3 "$program" >"$log" 2>&1
status=$?
elapsed=$(($(date +%s) - start))
cat "$log"
echo "mpirun exited with $status after ${elapsed} s"
# timeout's own status is 124 (137 after its -k); mpirun itself exits 128 + the killed rank's signal.
if ((status == 124 || elapsed >= 90)); then
    echo "FAILED: the job did not end within 90 s"
    exit 1
fi
if ((status == 0)); then
    echo "FAILED: mpirun exited 0 although a worker rank was killed"
    exit 1
fi
if ! grep -qiE 'signal 9|killed' "$log"; then
    echo "FAILED: mpirun's message does not say that a rank was killed"
    exit 1
fi
echo "ok: the job ended with an error naming the killed rank"
