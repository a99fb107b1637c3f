#!/usr/bin/env bash
# `make run`: the whole of changelens on one machine — ClickHouse, the
# collector, the query API and the demo traffic generator (with a backfilled
# past so the API has history at once). Ctrl-C stops everything.
#
# Environment (all optional):
#   CLICKHOUSE_ENGINE     the ClickHouse to start: "server" (default: Debian's clickhouse-server,
#                         18.16, from the OS packages), "chdb" (a current engine, 26.x, from
#                         PyPI's chdb, pinned in requirements-test.txt, installed into .venv/) or
#                         "cluster" (ZooKeeper and 2 shards × 2 replicas of clickhouse-server
#                         configured from deploy/cluster/, the test suite's cluster)
#   CLICKHOUSE_ENDPOINT   use this ClickHouse (host:port, native protocol) instead of starting one
#   CLICKHOUSE_USERNAME / CLICKHOUSE_PASSWORD   its writer credentials (default user "default")
#   CLICKHOUSE_API_DSN    DSN for the API (default: the read-only user of the local server, or the writer)
#   CLICKHOUSE_WORKER_DSN DSN for changelens-worker (default: the writer)
#   NOTIFY_CONFIG         the worker's notification targets (a YAML file; default: none)
#   KEEP_DATA             1: keep the previous run's local ClickHouse data (default: start afresh)
#   DEMO_BACKFILL         past period the demo emits first (default 7d)
#   TRACE_URL             the web UI's link to your trace UI, {trace_id} replaced
#                         (e.g. http://localhost:16686/trace/{trace_id}; default: IDs not linked)
#   API_HTTP_PORT / API_GRPC_PORT / OTLP_GRPC_PORT / OTLP_HTTP_PORT / WEBHOOK_PORT   (8080 / 9090 / 4317 / 4318 / 8088)
#   CHANGELENS_PAGERDUTY_WEBHOOK_SECRET / CHANGELENS_ALERTMANAGER_TOKEN   the webhook receiver's PagerDuty
#                         secret and Alertmanager token (demo defaults below); the demo reports the bad
#                         release's incidents with them, as PagerDuty and Alertmanager would
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
RUN=$ROOT/.run
mkdir -p "$RUN/log"

API_HTTP_PORT=${API_HTTP_PORT:-8080}
API_GRPC_PORT=${API_GRPC_PORT:-9090}
OTLP_GRPC_PORT=${OTLP_GRPC_PORT:-4317}
OTLP_HTTP_PORT=${OTLP_HTTP_PORT:-4318}
WEBHOOK_PORT=${WEBHOOK_PORT:-8088}
COLLECTOR_HEALTH_PORT=${COLLECTOR_HEALTH_PORT:-13133}
CH_TCP_PORT=${CH_TCP_PORT:-19000}
CH_HTTP_PORT=${CH_HTTP_PORT:-18123}
DEMO_BACKFILL=${DEMO_BACKFILL:-7d}
DB=${CLICKHOUSE_DATABASE:-changelens}
CLICKHOUSE_ENGINE=${CLICKHOUSE_ENGINE:-server}
case "$CLICKHOUSE_ENGINE" in server|chdb|cluster) ;; *) echo "make run: CLICKHOUSE_ENGINE=$CLICKHOUSE_ENGINE: want server, chdb or cluster" >&2; exit 1;; esac
COLLECTOR_CONFIG=config/collector.yaml
WORKER_FLAGS=()
# Demo secrets of the webhook receiver (the collector configs serve /alertmanager; /pagerduty is
# added below): set your own to point a real PagerDuty subscription or Alertmanager here.
export CHANGELENS_PAGERDUTY_WEBHOOK_SECRET=${CHANGELENS_PAGERDUTY_WEBHOOK_SECRET:-changelens-demo-pagerduty-secret}
export CHANGELENS_ALERTMANAGER_TOKEN=${CHANGELENS_ALERTMANAGER_TOKEN:-changelens-demo-alertmanager-token}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'make run: %s\n' "$*" >&2; exit 1; }

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  say "stopping"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  say "stopped (data kept in .run/; 'rm -rf .run' to start afresh)"
}
trap cleanup INT TERM EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$API_HTTP_PORT" "$API_GRPC_PORT" "$OTLP_GRPC_PORT" "$OTLP_HTTP_PORT" "$WEBHOOK_PORT"; do
  port_free "$p" || die "port $p is in use (set API_HTTP_PORT, API_GRPC_PORT, OTLP_GRPC_PORT, OTLP_HTTP_PORT, WEBHOOK_PORT)"
done

# --- prerequisites -------------------------------------------------------------
command -v go >/dev/null || die "Go is required (https://go.dev/dl/); Debian: apt-get install golang"
# The same installer as make test's deps step: it does nothing when all is there.
deploy/local/install.sh curl || die "could not install curl"
if [ -z "${CLICKHOUSE_ENDPOINT:-}" ] && [ "$CLICKHOUSE_ENGINE" = chdb ]; then
  make -q .venv/.chdb-installed 2>/dev/null || say "installing the current ClickHouse engine (PyPI chdb, pinned) into .venv/"
  make -s .venv/.chdb-installed || die "could not install chdb into .venv/"
elif [ -z "${CLICKHOUSE_ENDPOINT:-}" ]; then
  deploy/local/install.sh clickhouse-server $([ "$CLICKHOUSE_ENGINE" = cluster ] && echo zookeeper) \
    || die "could not install clickhouse-server (and ZooKeeper for a cluster) from the OS packages"
fi

say "building the collector (OCB), the API, the worker and the demo"
{ make -s build; } \
  > "$RUN/log/build.log" 2>&1 || { tail -20 "$RUN/log/build.log"; die "build failed (.run/log/build.log)"; }

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  for ((i=0; i<secs*4; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "$what did not come up within ${secs}s (logs in .run/log/)"
}

# --- ClickHouse ----------------------------------------------------------------
if [ -z "${CLICKHOUSE_ENDPOINT:-}" ] && [ "$CLICKHOUSE_ENGINE" = cluster ]; then
  if [ -z "${KEEP_DATA:-}" ] && [ -d "$RUN/cluster" ]; then
    say "removing the previous run's cluster data (KEEP_DATA=1 keeps it)"
    rm -rf "$RUN/cluster" "$RUN/queue"
  fi
  go build -o "$RUN/localcluster" ./testkit/chcluster/localcluster
  rm -f "$RUN/cluster.env"
  say "starting ZooKeeper and a ClickHouse 18.16 cluster of 2 shards × 2 replicas (deploy/cluster/; data in .run/cluster)"
  "$RUN/localcluster" --dir "$RUN/cluster" --env "$RUN/cluster.env" > "$RUN/log/clickhouse.out" 2>&1 &
  pids+=($!)
  wait_for "the ClickHouse cluster" 180 test -s "$RUN/cluster.env"
  set -a; . "$RUN/cluster.env"; set +a
  export CLICKHOUSE_ENDPOINT=$CLICKHOUSE_NODE_1 CLICKHOUSE_USERNAME=changelens_writer CLICKHOUSE_PASSWORD=change-me
  COLLECTOR_CONFIG=deploy/cluster/collector.yaml
  WORKER_FLAGS=(--cluster-name changelens)
  API_DSN=${CLICKHOUSE_API_DSN:-clickhouse://changelens_reader:change-me-too@$CLICKHOUSE_NODE_1/$DB}
  WORKER_DSN=${CLICKHOUSE_WORKER_DSN:-clickhouse://changelens_writer:change-me@$CLICKHOUSE_NODE_1/$DB}
elif [ -z "${CLICKHOUSE_ENDPOINT:-}" ]; then
  port_free "$CH_TCP_PORT" || die "port $CH_TCP_PORT is in use (set CH_TCP_PORT)"
  # Each engine keeps its own data: 18.16 cannot read what 26.x writes.
  CH=$RUN/clickhouse
  [ "$CLICKHOUSE_ENGINE" = chdb ] && CH=$RUN/clickhouse-chdb
  # Each run's demo back-fills its own week (its own releases and IDs): a
  # previous run's data would mix two histories. KEEP_DATA=1 keeps it.
  if [ -z "${KEEP_DATA:-}" ] && [ -d "$CH/data" ]; then
    say "removing the previous run's ClickHouse data (KEEP_DATA=1 keeps it)"
    rm -rf "$CH" "$RUN/queue"
  fi
  mkdir -p "$CH"/{data,tmp,log,user_files,format_schemas}
  sed -e "s#@DIR@#$CH#g" -e "s#@TCP@#$CH_TCP_PORT#g" -e "s#@HTTP@#$CH_HTTP_PORT#g" deploy/local/clickhouse-config.xml > "$CH/config.xml"
  cp deploy/local/clickhouse-users.xml "$CH/users.xml"
  if [ "$CLICKHOUSE_ENGINE" = chdb ]; then
    say "starting ClickHouse 26.x (chdb) on 127.0.0.1:$CH_TCP_PORT (data in ${CH#$ROOT/})"
    .venv/bin/python deploy/local/chdb-server.py --config-file="$CH/config.xml" > "$RUN/log/clickhouse.out" 2>&1 &
  else
    say "starting ClickHouse 18.16 on 127.0.0.1:$CH_TCP_PORT (data in ${CH#$ROOT/})"
    /usr/sbin/clickhouse-server --config-file="$CH/config.xml" > "$RUN/log/clickhouse.out" 2>&1 &
  fi
  pids+=($!)
  wait_for ClickHouse 60 curl -fsS "http://127.0.0.1:$CH_HTTP_PORT/ping"
  export CLICKHOUSE_ENDPOINT=127.0.0.1:$CH_TCP_PORT
  API_DSN=${CLICKHOUSE_API_DSN:-clickhouse://changelens_ro:changelens-ro@127.0.0.1:$CH_TCP_PORT/$DB}
  WORKER_DSN=${CLICKHOUSE_WORKER_DSN:-clickhouse://default:@127.0.0.1:$CH_TCP_PORT/$DB}
else
  say "using ClickHouse at $CLICKHOUSE_ENDPOINT"
  API_DSN=${CLICKHOUSE_API_DSN:-clickhouse://${CLICKHOUSE_USERNAME:-default}:${CLICKHOUSE_PASSWORD:-}@$CLICKHOUSE_ENDPOINT/$DB}
  WORKER_DSN=${CLICKHOUSE_WORKER_DSN:-clickhouse://${CLICKHOUSE_USERNAME:-default}:${CLICKHOUSE_PASSWORD:-}@$CLICKHOUSE_ENDPOINT/$DB}
fi

# --- collector -----------------------------------------------------------------
COLLECTOR_ARGS=(--config "$COLLECTOR_CONFIG")
DEMO_FLAGS=()
if grep -q '^  changelens_webhook:' "$COLLECTOR_CONFIG"; then
  # The shipped configs serve /cdevents and /alertmanager; PagerDuty needs a secret, so the
  # demo's is merged in here (a second --config) rather than shipped as a default.
  COLLECTOR_ARGS+=(--config 'yaml:receivers::changelens_webhook::pagerduty::secret: ${env:CHANGELENS_PAGERDUTY_WEBHOOK_SECRET}')
  DEMO_FLAGS=(--webhook-endpoint "localhost:$WEBHOOK_PORT")
fi
say "starting otelcol-changelens (OTLP on :$OTLP_GRPC_PORT gRPC, :$OTLP_HTTP_PORT HTTP${DEMO_FLAGS[@]+; webhooks on :$WEBHOOK_PORT})"
CHANGELENS_OTLP_GRPC_ENDPOINT=localhost:$OTLP_GRPC_PORT CHANGELENS_OTLP_HTTP_ENDPOINT=localhost:$OTLP_HTTP_PORT \
CHANGELENS_WEBHOOK_ENDPOINT=localhost:$WEBHOOK_PORT \
CHANGELENS_QUEUE_DIR=$RUN/queue CLICKHOUSE_DATABASE=$DB CHANGELENS_HEALTH_ENDPOINT=localhost:$COLLECTOR_HEALTH_PORT \
  bin/otelcol-changelens "${COLLECTOR_ARGS[@]}" > "$RUN/log/collector.log" 2>&1 &
pids+=($!)
wait_for "the collector" 60 curl -fsS "http://localhost:$COLLECTOR_HEALTH_PORT/"

# --- API -----------------------------------------------------------------------
say "starting changelens-api (REST :$API_HTTP_PORT, gRPC :$API_GRPC_PORT)"
CHANGELENS_CLICKHOUSE_DSN=$API_DSN bin/changelens-api --http-addr "127.0.0.1:$API_HTTP_PORT" --grpc-addr "127.0.0.1:$API_GRPC_PORT" \
  ${TRACE_URL:+--trace-url "$TRACE_URL"} --otlp-endpoint "http://localhost:$OTLP_GRPC_PORT" --teams-file deploy/local/teams.yaml > "$RUN/log/api.log" 2>&1 &
pids+=($!)
API=http://127.0.0.1:$API_HTTP_PORT
wait_for "the API" 60 curl -fsS "$API/readyz"

# --- worker --------------------------------------------------------------------
# The demo's experiments start three days into its backfill (the days before are
# the plan's pre-period), so the committed dates are moved to this run's history.
backfill_days=${DEMO_BACKFILL%d}
case "$backfill_days" in
  ''|*[!0-9]*) exp_start=$(date -u -d '-12 hours' +%Y-%m-%dT%H:00:00Z);;  # 36h and the like
  *) exp_start=$(date -u -d "-$(( backfill_days > 4 ? backfill_days - 3 : (backfill_days * 24) / 2 )) $([ "$backfill_days" -gt 4 ] && echo days || echo hours)" +%Y-%m-%dT%H:00:00Z);;
esac
rm -rf "$RUN/experiments" && mkdir -p "$RUN/experiments"
for f in deploy/local/experiments/*.yaml; do
  sed "s/^start_time: .*/start_time: $exp_start/" "$f" > "$RUN/experiments/${f##*/}"
done
say "starting changelens-worker (stored verdicts${NOTIFY_CONFIG:+, notifications from $NOTIFY_CONFIG}; experiments from deploy/local/experiments, started $exp_start)"
CHANGELENS_CLICKHOUSE_DSN=$WORKER_DSN bin/changelens-worker ${WORKER_FLAGS[@]+"${WORKER_FLAGS[@]}"} ${NOTIFY_CONFIG:+--notify-config "$NOTIFY_CONFIG"} \
  --experiments-dir "$RUN/experiments" \
  --otlp-endpoint "http://localhost:$OTLP_GRPC_PORT" > "$RUN/log/worker.log" 2>&1 &
pids+=($!)

# --- demo ----------------------------------------------------------------------
say "starting the demo: $DEMO_BACKFILL of history${DEMO_FLAGS[@]+ (the incidents of its bad release reported to the Alertmanager and PagerDuty webhooks)}, then live traffic"
bin/changelens-demo --otlp-endpoint "localhost:$OTLP_GRPC_PORT" --backfill "$DEMO_BACKFILL" ${DEMO_FLAGS[@]+"${DEMO_FLAGS[@]}"} > "$RUN/log/demo.log" 2>&1 &
pids+=($!)
demo=$!
while ! grep -q '^\[live' "$RUN/log/demo.log" 2>/dev/null; do
  kill -0 "$demo" 2>/dev/null || die "the demo stopped: $(tail -3 "$RUN/log/demo.log")"
  line=$(grep '^\[backfill' "$RUN/log/demo.log" 2>/dev/null | tail -1 || true)
  [ -n "$line" ] && printf '\r   %s' "${line:0:110}"
  sleep 2
done
echo
# The exporter flushes its last batches within a second or two; wait until the API lists them.
wait_for "the backfilled deployments" 120 bash -c "curl -fsS '$API/v1/deployments?page_size=1' | grep -q '\"id\"'"
sleep 5

from=$(date -u -d "-${DEMO_BACKFILL%d} days" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -d '-7 days' +%Y-%m-%dT%H:%M:%SZ)
show() { # title, url
  printf '\n\033[1m$ curl -s "%s"\033[0m\n' "$2"
  curl -fsS "$2" | python3 -c 'import json,sys; s=json.dumps(json.load(sys.stdin), indent=2).splitlines(); print("\n".join(s[:40] + (["  … (%d more lines)" % (len(s)-40)] if len(s) > 40 else [])))'
}

cat <<EOT

changelens is running.
  Web UI        $API/ui/   (deployments, impact, DORA per team, comparisons, experiments, the gate, retrospectives)
  REST API      $API        (OpenAPI: $API/openapi.json, health: $API/livez, $API/readyz)
  gRPC API      127.0.0.1:$API_GRPC_PORT  (changelens.v1.QueryService, reflection on)
  OTLP in       localhost:$OTLP_GRPC_PORT (gRPC), localhost:$OTLP_HTTP_PORT (HTTP) — point your own services here too
  Webhooks      localhost:$WEBHOOK_PORT: /cdevents, /alertmanager (token \$CHANGELENS_ALERTMANAGER_TOKEN), /pagerduty (secret \$CHANGELENS_PAGERDUTY_WEBHOOK_SECRET)
  ClickHouse    $CLICKHOUSE_ENDPOINT, database $DB
  Dashboards    dashboards/ (for a Grafana of your own: import them with the Infinity plugin; see dashboards/README.md)
  Logs          .run/log/{build.log,clickhouse.out,collector.log,api.log,worker.log,demo.log}
EOT
show "DORA" "$API/v1/dora?environment=production&start_time=$from"
show "deployments" "$API/v1/deployments?service=checkout&environment=production&start_time=$from&page_size=3"
show "latency" "$API/v1/latency:summary?service=checkout&environment=production&group_by=version&start_time=$from"
[ ${#DEMO_FLAGS[@]} -gt 0 ] && show "incidents" "$API/v1/incidents?environment=production&start_time=$from"
printf '\nThe order-screen experiment (GraphQL against REST, started %s):\n  %s\n  %s\n' "$exp_start" \
  "$API/v1/experiments/order-screen-api/report" "$API/v1/experiments/order-api-backend/report"
printf '\nCtrl-C stops everything.\n'
wait "$demo"
