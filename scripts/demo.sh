#!/usr/bin/env bash
# make demo: a generated organization replayed through agent -> gRPC -> hub -> OpenSearch, then what
# was indexed, per account and API. Needs the local OpenSearch (make opensearch-up) and bin/spikewatch.
set -euo pipefail
cd "$(dirname "$0")/.."
OS_URL="${SPIKEWATCH_OPENSEARCH_URL:-http://127.0.0.1:9200}"
DATA="${DEMO_DATA:-${TMPDIR:-/tmp}/spikewatch-demo/cloudtrail}"
PREFIX="${DEMO_PREFIX:-spikewatch-demo}"
PORT="${DEMO_PORT:-7443}"
TOKEN="demo-token-$$"
BIN=./bin/spikewatch
say() { printf '\n==> %s\n' "$*"; }

if [ ! -f "$DATA/truth.json" ]; then
  say "generating an organization (12 accounts, 3 days, injected incidents) into $DATA"
  $BIN generate --out "$DATA" --accounts 12 --days 3 --seed 42
else
  say "using the organization already generated in $DATA"
fi

say "what an agent would send (spikewatch count, first lines)"
$BIN count --quiet "$DATA" | head -8

say "starting the hub on 127.0.0.1:$PORT (index prefix $PREFIX)"
curl -fsS -XDELETE "$OS_URL/$PREFIX-counts-*" >/dev/null 2>&1 || true
$BIN hub --listen "127.0.0.1:$PORT" --http "127.0.0.1:0" --opensearch "$OS_URL" --index-prefix "$PREFIX" \
  --dev-token "$TOKEN=*" 2>"${TMPDIR:-/tmp}/spikewatch-demo/hub.log" &
HUB=$!
trap 'kill $HUB 2>/dev/null || true' EXIT
sleep 1

say "agent replaying $DATA over gRPC (progress below)"
$BIN agent --hub "127.0.0.1:$PORT" --token "$TOKEN" --source "dir://$DATA" --once --agent-id demo-agent \
  --spool "${TMPDIR:-/tmp}/spikewatch-demo/spool-$$"

say "indexed in OpenSearch ($PREFIX-counts-*), per account and API"
$BIN totals --opensearch "$OS_URL" --index-prefix "$PREFIX"

say "injected incidents (ground truth)"
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); [print("  %-12s %s %-18s %s -> %s %s" % (i.get("Kind", i.get("kind")), i.get("AccountID", i.get("account_id")), i.get("API", i.get("api")), i.get("Start", i.get("start")), i.get("End", i.get("end")), i.get("Entity", i.get("entity","")) or "")) for i in t.get("Incidents", t.get("incidents", []))]' "$DATA/truth.json" || true
echo
echo "Detection of these spikes (anomaly detectors, alerts) is the next milestone; see README."
