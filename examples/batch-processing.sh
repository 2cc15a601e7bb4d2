#!/usr/bin/env bash
# The seed's batch processing workflow: a pool of three workers of project batch-job; tasks
# distributed round-robin by hand (as the seed does) and through the project's pool queue (any
# free worker takes the next); results collected from the topic tasks.results.
#
#   examples/batch-processing.sh [N_TASKS]      (default 12; uses $AF_HOME and the af-* on PATH)
set -euo pipefail
n=${1:-12}
workers=(worker-001 worker-002 worker-003)

# createAgent x3, startAgent x3
for w in "${workers[@]}"; do
  printf '{"id":"%s","type":"worker","projectId":"batch-job","maxConcurrentTasks":2}\n' "$w"
done | af-spawn create >/dev/null
af-spawn start "${workers[@]}" >/dev/null

# Collect every result, whoever runs the task.
af-bus subscribe batch-results --topic tasks.results >/dev/null

# generateBatchTasks(): item i is squared by a small shell task.
task() { printf '{"command":["sh","-c","echo $(( %s * %s ))"],"item":%s}\n' "$1" "$1" "$1"; }

# for (i...) sendMessage(workers[i % workers.length], {type: 'task', data: tasks[i]})
half=$(( n / 2 ))
for i in $(seq 1 "$half"); do
  w=${workers[$(( (i - 1) % ${#workers[@]} ))]}
  task "$i" | af-bus send --to "$w" --kind task - >/dev/null
done
# ... and the rest through the pool: competing consumers.
for i in $(seq $(( half + 1 )) "$n"); do task "$i"; done | af-bus send --batch --to pool:batch-job --kind task >/dev/null

# Wait for every result and add them up.
sum=0
for _ in $(seq 1 "$n"); do
  line=$(af-bus recv batch-results --wait --timeout 60 --ack --json)
  case "$line" in
    *'"ok":true'*) ;;
    *) echo "batch-processing.sh: a task failed: $line" >&2; exit 1 ;;
  esac
  value=$(printf '%s' "$line" | sed -n 's/.*"stdout": *\([0-9][0-9]*\).*/\1/p')
  by=$(printf '%s' "$line" | sed -n 's/.*"agent": *"\([^"]*\)".*/\1/p')
  echo "result $value from $by"
  sum=$(( sum + value ))
done
echo "sum of squares 1..$n = $sum"
af-bus unsubscribe batch-results >/dev/null
af-spawn stop "${workers[@]}" >/dev/null
