#!/usr/bin/env bash
# make demo: a generated organization (12 accounts, 3 days, diurnal and weekly patterns, noise, and
# injected incidents) goes through the whole path: agent -> gRPC -> hub -> OpenSearch -> detector ->
# alert rules -> enriched alerts. Needs the local OpenSearch (make opensearch-up) and bin/spikewatch.
set -euo pipefail
cd "$(dirname "$0")/.."
OS_URL="${SPIKEWATCH_OPENSEARCH_URL:-http://127.0.0.1:9200}"
WORK="${DEMO_DIR:-${TMPDIR:-/tmp}/spikewatch-demo}"
DATA="$WORK/cloudtrail"
PREFIX="${DEMO_PREFIX:-spikewatch-demo}"
BIN=./bin/spikewatch
say() { printf '\n==> %s\n' "$*"; }
mkdir -p "$WORK"

if [ ! -f "$DATA/truth.json" ]; then
  say "generating an organization into $DATA"
  $BIN generate --out "$DATA" --accounts 12 --days 3 --seed 42
else
  say "using the organization already generated in $DATA (delete it to regenerate)"
fi

say "what an agent would send: spikewatch count (first lines)"
{ $BIN count --quiet "$DATA" || true; } | head -6

say "backtest: replay over gRPC into a hub, index into OpenSearch ($PREFIX-*), detect, alert"
$BIN backtest --events "$DATA" --opensearch "$OS_URL" --index-prefix "$PREFIX" --json >"$WORK/alerts.json"

say "indexed in OpenSearch, per account and API"
$BIN totals --opensearch "$OS_URL" --index-prefix "$PREFIX" | tail -n 40 || true

say "alerts (enriched; JSON in $WORK/alerts.json)"
$BIN backtest --events "$DATA" --opensearch "$OS_URL" --index-prefix "$PREFIX" --reuse 2>/dev/null

say "injected incidents (ground truth from $DATA/truth.json)"
python3 - "$DATA/truth.json" "$WORK/alerts.json" <<'PY'
import json, sys
truth = json.load(open(sys.argv[1]))
alerts = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
found = 0
for inc in truth["incidents"]:
    hit = [a for a in alerts if a["account_id"] == inc["account_id"] and a["api"] == inc["api"]
           and (not inc.get("entity") or a["entity"] == inc["entity"]) and a["start"] < inc["end"] and a["end"] > inc["start"]]
    found += bool(hit)
    print("  %-12s %s %-17s %-18s %s .. %s  %s" % (inc["kind"], inc["account_id"], inc["api"], inc.get("entity", ""),
          inc["start"], inc["end"], "FOUND at " + hit[0]["start"] if hit else "missed"))
print("  %d of %d incidents found; %d alerts in all" % (found, len(truth["incidents"]), len(alerts)))
PY
echo
echo "Next: 'bin/spikewatch hub --dev-token TOKEN=*' and 'bin/spikewatch agent --token TOKEN --source stdin' stream live; see README."
