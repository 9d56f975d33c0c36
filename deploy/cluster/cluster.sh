#!/usr/bin/env bash
# A real cluster on this machine: HAProxy in front of several ASGI workers, a Redis of its own,
# a PostgreSQL database per alias, a Celery worker and beat. Used by `make cluster` /
# `make cluster-stop`; documented in docs/operations.md ("Cluster").
#
#   deploy/cluster/cluster.sh start|stop|status|revive|env|haproxy-cfg|worker-cmd|prometheus-cfg
#
# Everything lives under var/cluster/ (CLUSTER_DIR): logs/ (one file per process), run/ (pid
# files), the generated haproxy.cfg and redis.conf, metrics/ (PROMETHEUS_MULTIPROC_DIR: every
# process of this host writes its metrics there, emptied at start), and `env` (the environment
# every process got; `source` it to run manage.py against the cluster). OBSERVE=1 also starts
# Prometheus (prometheus.yml, data in prometheus/) on a loopback port, scraping the cluster. `start` first stops what a previous start left running,
# so it is safe to rerun; `stop` ends only the processes whose pid files it wrote.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

WORKERS=${WORKERS:-4}                      # ASGI worker processes (make cluster, make bench)
SERVER=${SERVER:-uvicorn}                  # uvicorn (measured faster, docs/performance.md) | daphne
WS_IMPL=${WS_IMPL:-websockets-sansio}      # uvicorn --ws: websockets-sansio | websockets (legacy) | wsproto
PORT=${CLUSTER_PORT:-8080}                 # the load balancer
WORKER_BASE_PORT=${WORKER_BASE_PORT:-8100} # workers listen on BASE+1 .. BASE+WORKERS
REDIS_PORT=${CLUSTER_REDIS_PORT:-6390}     # the cluster's own Redis (no persistence)
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
DB_PREFIX=${DB_PREFIX:-poker_cluster}
SHARDS=${SHARDS:-eu-1@eu,us-1@us}          # alias@region,... : one database per alias; two regions, so finished rounds replicate
CELERY=${CELERY:-1}                        # 0: no Celery worker/beat (benchmarks of the socket path)
RESET_DB=${RESET_DB:-0}                    # 1: drop the cluster's databases first (fresh schema)
# HAProxy processes sharing the port (SO_REUSEPORT; the kernel spreads connections). A proxied
# socket costs HAProxy two descriptors, and this box's hard limit is 20000 per process, so one
# process holds fewer than 10,000 sockets. Each process hashes teams to workers identically.
LB_PROCS=${LB_PROCS:-2}
# Keep-alive pings find sockets whose client vanished without closing (a laptop lid shut); each
# costs the worker a frame out and one in. With 10,000 idle sockets uvicorn's default of 20 s
# is most of the idle CPU (docs/performance.md); 60 s still clears a dead seat in ~90 s.
WS_PING_INTERVAL=${WS_PING_INTERVAL:-60}
WS_PING_TIMEOUT=${WS_PING_TIMEOUT:-30}
# The largest frame the server reads before closing the socket (1009). The table refuses frames
# over ROOM_MAX_FRAME_BYTES itself; without this cap the servers would first buffer up to
# 16 MiB (uvicorn) or 1 MiB (daphne) per frame. 16 times the table's limit: 64 KiB by default.
ROOM_MAX_FRAME_BYTES=${ROOM_MAX_FRAME_BYTES:-4096}
WS_MAX_SIZE=${WS_MAX_SIZE:-$((ROOM_MAX_FRAME_BYTES * 16))}
# 1: start Prometheus too (Debian package `prometheus`), on PROMETHEUS_PORT (default: a free
# loopback port, written to prometheus-url), scraping every SCRAPE_INTERVAL, with the alert rules
# of deploy/prometheus/rules.yml. docs/operations.md, "Observing it".
OBSERVE=${OBSERVE:-0}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-5s}

DIR=${CLUSTER_DIR:-$ROOT/var/cluster}
LOGS=$DIR/logs
RUN=$DIR/run
VENV=$ROOT/.venv
PY=$VENV/bin/python

log() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Start "$@" in its own session (so stop can signal the whole process group), output to a log.
spawn() {
  local name=$1; shift
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

stop_one() {
  local pidfile=$1 name pid
  name=$(basename "$pidfile" .pid)
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 10 s: killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

cmd_stop() {
  [[ -d $RUN ]] || { log "nothing to stop"; return 0; }
  # Balancer first (no new sockets), then workers and Celery, Redis last.
  local f
  for f in "$RUN"/haproxy-*.pid "$RUN"/workers.pid "$RUN"/worker-*.pid "$RUN"/celery-*.pid; do
    [[ -e $f ]] && stop_one "$f"
  done
  for f in "$RUN"/*.pid; do [[ -e $f ]] && stop_one "$f"; done
  return 0
}

ensure_packages() {
  local missing=()
  command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  if [[ $OBSERVE == 1 ]]; then command -v prometheus >/dev/null 2>&1 || missing+=(prometheus); fi
  if ((${#missing[@]})); then
    log "installing ${missing[*]} (Debian packages)"
    [[ $(id -u) == 0 ]] || die "run as root or install: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  [[ -x $PY ]] || die "no virtualenv: run 'make cluster' (it installs .venv)"
}

write_env() {
  local secret shard_urls="" item alias
  [[ -f $DIR/secret ]] || head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$DIR/secret"
  secret=$(cat "$DIR/secret")
  [[ -f $DIR/metrics-token ]] || head -c 32 /dev/urandom | base64 | tr -d '\n/+=' >"$DIR/metrics-token"
  IFS=',' read -ra items <<<"$SHARDS"
  for item in "${items[@]}"; do
    alias=${item%@*}
    shard_urls+="${shard_urls:+,}$item=$PG_URL/${DB_PREFIX}_${alias//-/_}"
  done
  local redis=redis://127.0.0.1:$REDIS_PORT
  cat >"$DIR/env" <<ENV
# Written by deploy/cluster/cluster.sh; \`source var/cluster/env\` to talk to the cluster.
export DJANGO_DEBUG=false
export DJANGO_SECRET_KEY='$secret'
export METRICS_TOKEN='$(cat "$DIR/metrics-token")'
export DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
export DJANGO_SECURE_SSL_REDIRECT=false
export DJANGO_SECURE_COOKIES=false
export DJANGO_HSTS_SECONDS=0
export DATABASE_URL=$PG_URL/$DB_PREFIX
export SHARD_URLS=$shard_urls
# A connection pool per alias in each process (settings.py): see check_pool_budget.
export DATABASE_POOL_MIN_SIZE=${DATABASE_POOL_MIN_SIZE:-1}
export DATABASE_POOL_MAX_SIZE=${DATABASE_POOL_MAX_SIZE:-3}
export DATABASE_CONN_HEALTH_CHECKS=${DATABASE_CONN_HEALTH_CHECKS:-false}
export DATABASE_SERVER_SIDE_BINDING=${DATABASE_SERVER_SIDE_BINDING:-true}
export ROOM_DB_THREADS=${ROOM_DB_THREADS:-0}
export REDIS_URL=$redis/0
export REDIS_CACHE_URL=$redis/1
export CELERY_BROKER_URL=$redis/2
export CHANNEL_LAYER_PREFIX=poker
# One directory for the metrics of every process on this host; /metrics on any worker sums them.
export PROMETHEUS_MULTIPROC_DIR=$DIR/metrics
export CHANNEL_LAYER_BACKEND=${CHANNEL_LAYER_BACKEND:-pubsub}
export GC_FREEZE=${GC_FREEZE:-1}
export GC_THRESHOLDS=${GC_THRESHOLDS:-50000,50,100}
export PY_SWITCH_INTERVAL_MS=${PY_SWITCH_INTERVAL_MS:-1}
export ROOM_VOTE_BATCH_MS=${ROOM_VOTE_BATCH_MS:-6}
export LOG_LEVEL=\${LOG_LEVEL:-WARNING}
# One JSON object a line (docs/operations.md, "Logs and traces"); OTEL_* from the caller's
# environment turn tracing on (off when none is set).
export LOG_FORMAT=\${LOG_FORMAT:-json}
export CLUSTER_URL=http://127.0.0.1:$PORT
export CLUSTER_WORKERS=$WORKERS
export CLUSTER_CELERY=$CELERY
export CLUSTER_SERVER=$SERVER
export CLUSTER_WS_IMPL=$WS_IMPL
ENV
}

create_databases() {
  local db
  psql "$PG_URL/postgres" -qtAc "SELECT 1" >/dev/null || die "PostgreSQL does not answer at $PG_URL"
  if [[ $(psql "$PG_URL/postgres" -qtAc "SHOW autovacuum") == off ]]; then
    # Without it the planner's statistics go stale as votes pile up (docs/performance.md, round 8).
    log "warning: autovacuum is off on $PG_URL; run 'python -m bench.seed --vacuum-only' after heavy use (make bench does)"
  fi
  for db in "$DB_PREFIX" $(IFS=','; for i in $SHARDS; do a=${i%@*}; echo "${DB_PREFIX}_${a//-/_}"; done); do
    if [[ $RESET_DB == 1 ]]; then
      psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" && log "dropped database $db"
    fi
    psql "$PG_URL/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || { psql "$PG_URL/postgres" -qc "CREATE DATABASE $db" && log "created database $db"; }
  done
}

# Every process holds at most DATABASE_POOL_MAX_SIZE connections per alias: the workers, the two
# Celery pool processes (a task at a time each) and migrate_all must fit PostgreSQL's
# max_connections, which other clients of that server share.
check_pool_budget() {
  local aliases max_size most max_conns
  aliases=$(( $(tr -cd ',' <<<"$SHARDS" | wc -c) + 2 ))
  max_size=${DATABASE_POOL_MAX_SIZE:-3}
  most=$(( (WORKERS + 2) * aliases * max_size ))
  max_conns=$(psql "$PG_URL/postgres" -qtAc "SHOW max_connections")
  log "database connections: at most $most ($((WORKERS + 2)) processes x $aliases aliases x $max_size) of max_connections $max_conns"
  if (( most * 4 > max_conns * 3 )); then
    log "warning: that is more than 3/4 of max_connections; lower DATABASE_POOL_MAX_SIZE or WORKERS"
  fi
}

start_redis() {
  cat >"$DIR/redis.conf" <<CONF
port $REDIS_PORT
bind 127.0.0.1
save ""
appendonly no
daemonize no
maxclients 20000
dir $DIR
CONF
  spawn redis redis-server "$DIR/redis.conf"
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "redis did not start (see $LOGS/redis.log)"
}

# The balancer's configuration, on stdout. Workers at WORKER_PORTS ("8101,8102"; the cross-worker
# tests pass theirs, so they run these very rules) or else BASE+1 .. BASE+WORKERS.
haproxy_cfg() {
  local servers="" tracked="" i=0 port ports
  if [[ -n ${WORKER_PORTS:-} ]]; then
    IFS=, read -r -a ports <<<"$WORKER_PORTS"
  else
    ports=()
    for i in $(seq 1 "$WORKERS"); do ports+=("$((WORKER_BASE_PORT + i))"); done
    i=0
  fi
  for port in "${ports[@]}"; do
    i=$((i + 1))
    servers+="    server w$i 127.0.0.1:$port check inter 2s fall 2 rise 1 maxconn 20000"$'\n'
    # The same workers: one health check each (by_team's), not one per backend.
    tracked+="    server w$i 127.0.0.1:$port track by_team/w$i maxconn 20000"$'\n'
  done
  cat <<CFG
# Generated by deploy/cluster/cluster.sh (haproxy_cfg); edit it there.
global
    maxconn $(( ($(ulimit -n) - 200) / 2 ))

defaults
    mode http
    option http-server-close
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h        # open WebSockets
    timeout http-request 10s
    # A worker that died is refused at once; until its health check notices (up to 2 checks),
    # retry the connection on another worker instead of answering 503.
    retries 3
    option redispatch 1

frontend poker
    bind 127.0.0.1:$PORT
    # Locality: every socket and page of one team goes to the same worker, so a team's events
    # are mostly fanned out inside one process. Correctness does not depend on it (Redis relays).
    http-request set-var(txn.team) path,field(4,/) if { path_beg /ws/teams/ }
    http-request set-var(txn.team) path,field(3,/) if { path_beg /teams/ }
    use_backend by_team if { var(txn.team) -m found }
    default_backend any

backend by_team
    balance hash var(txn.team)
    hash-type consistent
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host localhost
$servers
backend any
    balance roundrobin
$tracked
CFG
}

wait_http() {
  local url=$1 name=$2
  for _ in $(seq 1 150); do
    curl -fs -o /dev/null -H "Authorization: Bearer $(cat "$DIR/metrics-token")" "$url" && return 0
    alive "$RUN/$name.pid" || die "$name exited (see $LOGS/$name.log)"
    sleep 0.2
  done
  die "$name did not answer $url (see $LOGS/$name.log)"
}

# A port still held by someone else (another checkout's cluster, whose pid files we do not own)
# would be shared silently: HAProxy binds with SO_REUSEPORT. Refuse instead.
check_ports() {
  local p busy=()
  for p in "$PORT" "$REDIS_PORT" $(seq $((WORKER_BASE_PORT + 1)) $((WORKER_BASE_PORT + WORKERS))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && busy+=("$p")
  done
  ((${#busy[@]} == 0)) || die "ports in use by another process: ${busy[*]} (CLUSTER_PORT, WORKER_BASE_PORT, CLUSTER_REDIS_PORT move them)"
}

# The command line of the ASGI workers listening on ports "$@", into the array WORKER_CMD. uvicorn:
# one launcher that imports the application once and forks a worker per port, so the workers share
# its pages (pokerproject/prefork.py; it also starts a worker again when one dies). daphne: one
# process for the port $1.
worker_cmd() {
  local ports
  ports=$(IFS=,; echo "$*")
  case $SERVER in
    uvicorn) WORKER_CMD=("$PY" -m pokerproject.prefork --ports "$ports"
        --host 127.0.0.1 --loop uvloop --http httptools --ws "$WS_IMPL"
        --ws-ping-interval "$WS_PING_INTERVAL" --ws-ping-timeout "$WS_PING_TIMEOUT"
        --ws-max-size "$WS_MAX_SIZE" --log-level warning --timeout-graceful-shutdown 5) ;;
    daphne) WORKER_CMD=("$VENV/bin/daphne" -b 127.0.0.1 -p "$1" --access-log /dev/null
        --websocket-max-message-size "$WS_MAX_SIZE" --websocket-max-frame-size "$WS_MAX_SIZE"
        pokerproject.asgi:application) ;;
    *) die "SERVER must be uvicorn or daphne" ;;
  esac
}

worker_ports() { local i; for i in $(seq 1 "$WORKERS"); do echo $((WORKER_BASE_PORT + i)); done; }

# Start the workers (see worker_cmd) and wait until each answers its health check. The uvicorn
# launcher writes worker-<n>.pid and worker-<n>.log itself; its own are workers.pid/.log.
start_workers() {
  local i
  if [[ $SERVER == uvicorn ]]; then
    if ! alive "$RUN/workers.pid"; then
      # shellcheck disable=SC2046
      worker_cmd $(worker_ports)
      spawn workers "${WORKER_CMD[@]}" --pid-dir "$RUN" --log-dir "$LOGS"
    fi
    for i in $(seq 1 "$WORKERS"); do wait_http "http://127.0.0.1:$((WORKER_BASE_PORT + i))/healthz" workers; done
  else
    for i in $(seq 1 "$WORKERS"); do
      alive "$RUN/worker-$i.pid" && continue
      worker_cmd $((WORKER_BASE_PORT + i))
      spawn "worker-$i" "${WORKER_CMD[@]}"
    done
    for i in $(seq 1 "$WORKERS"); do wait_http "http://127.0.0.1:$((WORKER_BASE_PORT + i))/healthz" "worker-$i"; done
  fi
}

# Prometheus' configuration, on stdout. One target per host: the balancer, since any worker
# answers /metrics with the sum over every process of the host (workers and Celery: they share
# PROMETHEUS_MULTIPROC_DIR), so a worker that died does not take the host's figures with it.
prometheus_cfg() {
  cat <<CFG
# Generated by deploy/cluster/cluster.sh (prometheus_cfg); edit it there.
global:
  scrape_interval: $SCRAPE_INTERVAL
  evaluation_interval: $SCRAPE_INTERVAL
rule_files:
  - $ROOT/deploy/prometheus/rules.yml
scrape_configs:
  - job_name: poker
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: $DIR/metrics-token
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
        labels:
          instance: $(hostname)
CFG
}

start_prometheus() {
  local port=$PROMETHEUS_PORT
  if [[ -z $port ]]; then
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  prometheus_cfg >"$DIR/prometheus.yml"
  if command -v promtool >/dev/null 2>&1; then
    promtool check config "$DIR/prometheus.yml" >>"$LOGS/prometheus.log" 2>&1 \
      || die "invalid prometheus.yml (see $LOGS/prometheus.log)"
  fi
  mkdir -p "$DIR/prometheus"
  spawn prometheus prometheus --config.file="$DIR/prometheus.yml" \
    --storage.tsdb.path="$DIR/prometheus" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$port/-/ready" && break
    alive "$RUN/prometheus.pid" || die "prometheus exited (see $LOGS/prometheus.log)"
    sleep 0.2
  done
  echo "http://127.0.0.1:$port" >"$DIR/prometheus-url"
  log "prometheus: http://127.0.0.1:$port/ (scrapes every $SCRAPE_INTERVAL; alerts at /alerts)"
}

cmd_start() {
  ensure_packages
  cmd_stop >/dev/null
  check_ports
  mkdir -p "$LOGS" "$RUN"
  # Metrics of a previous start would add to this one's (their processes are gone).
  rm -rf "$DIR/metrics" && mkdir -p "$DIR/metrics"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  write_env
  # shellcheck disable=SC1091
  source "$DIR/env"
  create_databases
  check_pool_budget
  start_redis
  log "migrating every database alias"
  "$PY" manage.py migrate_all >>"$LOGS/migrate.log" 2>&1 || die "migrate failed (see $LOGS/migrate.log)"
  "$PY" manage.py collectstatic --noinput >>"$LOGS/migrate.log" 2>&1 || die "collectstatic failed"
  start_workers
  if [[ $CELERY == 1 ]]; then
    spawn celery-worker "$VENV/bin/celery" -A pokerproject worker -Q celery,replication,webhooks,notifications \
      --concurrency 2 --loglevel INFO -n "poker@%h"
    spawn celery-beat "$VENV/bin/celery" -A pokerproject beat --loglevel INFO \
      --schedule "$DIR/celerybeat-schedule" --pidfile=
  fi
  haproxy_cfg >"$DIR/haproxy.cfg"
  haproxy -c -q -f "$DIR/haproxy.cfg" || die "invalid haproxy.cfg"
  for i in $(seq 1 "$LB_PROCS"); do spawn "haproxy-$i" haproxy -W -db -f "$DIR/haproxy.cfg"; done
  wait_http "http://127.0.0.1:$PORT/readyz" haproxy-1
  if [[ $OBSERVE == 1 ]]; then start_prometheus; fi
  log "up: http://127.0.0.1:$PORT/ ($WORKERS $SERVER workers behind $LB_PROCS HAProxy processes; logs in ${DIR#"$ROOT"/}/logs/)"
  log "environment for manage.py: source ${DIR#"$ROOT"/}/env"
}

# As a supervisor would after a crash: start again every worker whose process is gone. The uvicorn
# launcher does that by itself; only if the launcher itself is gone is it started again.
cmd_revive() {
  # shellcheck disable=SC1091
  source "$DIR/env"
  local f
  if [[ $SERVER == uvicorn ]] && ! alive "$RUN/workers.pid"; then
    # Its workers die with it (PR_SET_PDEATHSIG); a straggler would hold its port.
    for f in "$RUN"/worker-*.pid; do [[ -e $f ]] && stop_one "$f"; done
    log "starting the workers' launcher again"
  fi
  start_workers
  log "every worker answers"
}

cmd_status() {
  local f
  [[ -d $RUN ]] || { log "not running"; return 0; }
  for f in "$RUN"/*.pid; do
    [[ -e $f ]] || continue
    if alive "$f"; then echo "  $(basename "$f" .pid): running (pid $(cat "$f"))"
    else echo "  $(basename "$f" .pid): dead"; fi
  done
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  revive) cmd_revive ;;
  env) cat "$DIR/env" ;;
  haproxy-cfg) haproxy_cfg ;;
  # shellcheck disable=SC2046
  worker-cmd) worker_cmd $(worker_ports); echo "${WORKER_CMD[*]}" ;;
  prometheus-cfg) prometheus_cfg ;;
  *) echo "usage: $0 start|stop|status|revive|env|haproxy-cfg|worker-cmd|prometheus-cfg" >&2; exit 2 ;;
esac
