#!/usr/bin/env bash
# expect_job_ends.sh STATUS PATTERN COMMAND... — runs COMMAND (a job in which a task kills its
# worker) and checks what a user should see: the job ends within 90 s, with exit status STATUS (not
# a crash or a signal of its own), and its output matches PATTERN (the message naming the dead worker).
set -u
expected_status=$1
pattern=$2
shift 2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# A killed rank cannot unlink its Open MPI shared-memory segment (vader_segment.*): the ones this job
# made are removed once it is over, so that the test leaves /dev/shm as it found it.
segments_before=$(ls /dev/shm | grep '^vader_segment\.' || true)
start=$(date +%s)
timeout -k 5 90 "$@" >"$log" 2>&1
status=$?
elapsed=$(($(date +%s) - start))
for segment in $(ls /dev/shm | grep '^vader_segment\.' || true); do
    grep -qxF "$segment" <<<"$segments_before" || rm -f "/dev/shm/$segment"
done
cat "$log"
echo "the job exited with $status after ${elapsed} s"
# timeout's own status is 124 (137 after its -k); mpirun itself exits 128 + the killed rank's signal.
if ((status == 124 || elapsed >= 90)); then
    echo "FAILED: the job did not end within 90 s"
    exit 1
fi
if ((status != expected_status)); then
    echo "FAILED: the job exited with $status, not $expected_status"
    exit 1
fi
if ! grep -qiE "$pattern" "$log"; then
    echo "FAILED: no message matching '$pattern' names the dead worker"
    exit 1
fi
echo "ok: the job ended with an error naming the dead worker"
