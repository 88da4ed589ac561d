#!/usr/bin/env bash
# `make demo`: one job end to end, told as the operator, the data owner (alice) and the
# researcher (bob) would live it. Every command printed with `$` is one a person can type.
# Uses a throwaway installation under a temporary folder; exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

bold=$'\033[1m'; dim=$'\033[2m'; green=$'\033[32m'; off=$'\033[0m'
[ -t 2 ] || { bold=; dim=; green=; off=; }
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off" >&2; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off" >&2; }
as() { # as alice|bob|admin COMMAND... : run a c2d command as that person, showing it
  local who=$1; shift
  show "$*   ${dim}(as $who)"
  # Each person's own CLI folder: the login and signing key on their machine.
  C2D_CONFIG="$work/people/$who/config.json" C2D_TOKEN="${tokens[$who]}" "$@"
}

[ "$(id -u)" = 0 ] || { echo "demo: the worker mounts each job's capped /outputs, which needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/c2d-demo.XXXXXX)
export C2D_HOME="$work/home"
# The host's administrator says where datasets may live; owners register folders inside it only.
export C2D_DATASET_ROOTS="$work/private"
C2D_PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export C2D_PORT C2D_URL="http://127.0.0.1:$C2D_PORT"
declare -A tokens
up_pid=
cleanup() {
  if [ -n "$up_pid" ]; then kill "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
started=$(date +%s)

step "Operator: create an installation and start c2d (API + one worker)"
show "export C2D_DATASET_ROOTS=$C2D_DATASET_ROOTS   ${dim}(the only folder datasets may be registered in)"
show "c2d init"
tokens[admin]=$(c2d init)
show "c2d up &   ${dim}(log: $work/c2d.log)"
c2d up >"$work/c2d.log" 2>&1 &
up_pid=$!
for _ in $(seq 100); do
  C2D_TOKEN="${tokens[admin]}" c2d env list --json >/dev/null 2>&1 && break
  kill -0 "$up_pid" 2>/dev/null || { tail -20 "$work/c2d.log" >&2; exit 1; }
  sleep 0.3
done
as admin c2d env list
# The data host `local` (its own key and state folder) reported in over HTTP, as a host on
# another machine would (README, "Data hosts").
as admin c2d hosts
tokens[alice]=$(as admin c2d user add alice --role owner)
tokens[bob]=$(as admin c2d user add bob --role researcher)

step "Alice and bob log in: each makes a signing key on their own machine and registers it"
for who in alice bob; do
  show "c2d login $C2D_URL --with-token   ${dim}(as $who; the token on stdin, the key never leaves)"
  C2D_CONFIG="$work/people/$who/config.json" c2d login "$C2D_URL" --with-token \
    <<<"${tokens[$who]}" >/dev/null
done
as alice c2d key list

step "Data owner (alice): a private dataset stays on her host; she registers it"
show "python examples/make_dataset.py $work/private/patients"
python examples/make_dataset.py "$work/private/patients" >/dev/null
# Outputs wait for her release (the default); the data host checks them first: only model and
# JSON files, no metric that looks like a row or counts fewer than 10 people.
as alice c2d dataset add patients "$work/private/patients" --schema stats --public patients.csv:sex --allow-types .skops,.json
as alice c2d dataset list

step "Researcher (bob): read what he may see of the data, try his job on mock data"
as bob c2d dataset show patients
as bob c2d run examples/jobs/diabetes-classifier --mock patients >/dev/null

step "Researcher (bob): submit a training job; he never sees the data"
show "cat examples/jobs/diabetes-classifier/job.yaml"
grep -v '^#' examples/jobs/diabetes-classifier/job.yaml >&2
job=$(as bob c2d submit examples/jobs/diabetes-classifier --dataset patients)
as bob c2d status "$job"
# The data host dry-runs it on mock data before review; give it the few seconds it takes.
for _ in $(seq 60); do
  C2D_TOKEN="${tokens[bob]}" c2d status "$job" 2>&1 | grep -q '^dry run  *not run yet' || break
  sleep 0.5
done

step "Data owner (alice): review the exact code and approve it"
as alice c2d jobs --state pending
as alice c2d review "$job"
as alice c2d approve "$job" --note "reviewed train.py: reads patients.csv, writes model and metrics only"

step "The job runs in the sandbox beside the data (no network, read-only data, limits)"
as bob c2d status "$job" --wait

step "Data owner (alice): the result and its output checks are hers alone until she releases it (bob saw only the state)"
as alice c2d status "$job"
as alice c2d logs "$job"
as alice c2d release "$job"

step "Researcher (bob): fetch the model; every digest and the receipt are checked first"
as bob c2d fetch "$job" -o "$work/fetched" --key "$C2D_HOME/ledger.key.pub"
show "python: load model.skops and predict"
python - "$work/fetched" <<'PY'
import json, sys
from pathlib import Path

import skops.io
from sklearn.metrics import accuracy_score

sys.path.insert(0, "examples")
from make_dataset import make_patients

out = Path(sys.argv[1])
# skops refuses types that could misbehave if a file were crafted; bob's own code made this
# forest, so he trusts exactly the one type it needs (never everything skops reports).
model = skops.io.load(out / "model.skops", trusted=["sklearn.tree._tree.Tree"])
metrics = json.loads((out / "metrics.json").read_text())
mine = make_patients(2000, seed=99)  # bob's own synthetic sample, not the private data
features = ["age", "bmi", "smoker", "glucose", "systolic_bp"]
local = accuracy_score(mine["diabetes"], model.predict(mine[features]))
print(f"  model loaded here: {type(model).__name__}", file=sys.stderr)
print(f"  accuracy on the private held-out rows (from metrics.json): {metrics['accuracy']:.3f}",
      file=sys.stderr)
print(f"  accuracy on bob's own synthetic sample:                    {local:.3f}", file=sys.stderr)
PY

step "Anyone: check the ledger and the job's receipt"
as bob c2d ledger verify --key "$C2D_HOME/ledger.key.pub"
show "c2d receipt verify $work/fetched/receipt.json --key $C2D_HOME/ledger.key.pub"
c2d receipt verify "$work/fetched/receipt.json" --key "$C2D_HOME/ledger.key.pub"

step "Researcher (bob): one more job, which waits in alice's review queue"
next_job=$(as bob c2d submit examples/jobs/bp-regression --dataset patients --param alpha=0.5)
for _ in $(seq 60); do  # its dry run, so the queue shows its verdict
  C2D_TOKEN="${tokens[bob]}" c2d status "$next_job" 2>&1 | grep -q '^dry run  *not run yet' || break
  sleep 0.5
done
as alice c2d jobs --state pending

printf '\n%sDemo finished in %d s.%s Everything is in %s (the API is stopped now).\n' \
  "$green" $(($(date +%s) - started)) "$off" "$work" >&2
cat >&2 <<EOT

Try next, in this folder (the first two lines start the demo's installation again):
  export PATH="$PWD/.venv/bin:\$PATH" C2D_HOME=$C2D_HOME C2D_PORT=$C2D_PORT C2D_URL=$C2D_URL C2D_DATASET_ROOTS=$C2D_DATASET_ROOTS
  c2d up &
  C2D_CONFIG=$work/people/alice/config.json c2d review $next_job   # bob's second job, waiting for her
  C2D_CONFIG=$work/people/alice/config.json c2d trust $job     # bob's later jobs with this code and params run without review
  C2D_CONFIG=$work/people/bob/config.json c2d ledger show --job $job
  c2d --help

With c2d up running, alice's review queue opens in a browser (sign in with her token,
${tokens[alice]}; bob's pages take his, ${tokens[bob]}):
EOT
printf '  %s%s/ui/queue%s\n' "$bold" "$C2D_URL" "$off" >&2
