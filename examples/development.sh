#!/usr/bin/env bash
# The seed's development workflow: a claude-code agent on a project in git; a task to implement a
# feature (the seed's task shape); the answer, its cost; a checkpoint once the work is done.
#
#   examples/development.sh [PROJECT_DIR]     (default: a fresh demo repository under $AF_HOME)
#
# It runs the `claude` CLI on PATH, with your own login (AgentFlow never handles credentials);
# CLAUDE_BIN names another program that speaks its protocol (the tests use their double).
set -euo pipefail
home="${AF_HOME:-${XDG_STATE_HOME:-$HOME/.local/state}/agentflow}"
project=${1:-"$home/examples/my-app"}
if [ ! -d "$project/.git" ]; then
  mkdir -p "$project/src/auth"
  git -C "$project" init -q
  printf 'export const login = () => null;\n' > "$project/src/auth/login.ts"
  git -C "$project" add -A
  git -C "$project" -c user.name=dev -c user.email=dev@localhost commit -qm "start"
fi
cli=${CLAUDE_BIN:-claude}

# createAgent({id: 'dev-session-001', type: 'claude-code', projectId: 'my-app', ...}); startAgent
printf '{"id":"dev-session-001","type":"claude-code","projectId":"my-app","workdir":"%s","command":["%s"],"capabilities":["code-generation","testing","debugging"],"budgetUsd":5}\n' \
  "$project" "$cli" | af-spawn create --start >/dev/null

# sendMessage('dev-session-001', {type: 'task', action: 'implement_feature', ...}), and wait for
# the turn's answer. af-bus request exits 1 when the answer says "ok": false (5: no answer in time):
# then there is nothing complete to checkpoint.
status=0
answer=$(af-bus request --to dev-session-001 --timeout 1800 \
  '{"type":"task","action":"implement_feature","requirements":"Add user authentication system","files":["src/auth/","src/components/Login.tsx"]}') || status=$?
echo "answer: $answer"
if [ "$status" -ne 0 ]; then
  echo "development.sh: the task did not succeed (af-bus request exited $status); no checkpoint taken" >&2
  af-spawn stop dev-session-001 >/dev/null
  exit 1
fi

# The agent's running cost, from its state.
af-spawn show dev-session-001 | grep -E '^(status|cost|tokens|conversation)' || true

# createCheckpoint('dev-session-001', 'Auth system implementation complete')
ckpt=$(af-checkpoint create dev-session-001 -m "Auth system implementation complete")
echo "checkpoint $ckpt"
af-checkpoint ls dev-session-001
af-spawn stop dev-session-001 >/dev/null
