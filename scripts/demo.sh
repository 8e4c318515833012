#!/usr/bin/env bash
# make demo: the pipeline on a generated organization, against the local OpenSearch.
set -euo pipefail
echo "spikewatch demo: the pipeline is not built yet (issues 3 and 4); OpenSearch is up at ${SPIKEWATCH_OPENSEARCH_URL:-http://127.0.0.1:9200}"
