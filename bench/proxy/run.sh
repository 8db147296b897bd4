#!/usr/bin/env bash
# Side-by-side HTTP/1.1 reverse-proxy benchmark on a 2-core box: sluice against nginx, HAProxy
# and Caddy (Debian packages) on the same nginx backend, in the same run.
# Adapted from the team's shared peers harness; sluice is a built-in target here (port 18084,
# config written by start_sluice below with the same fairness policy as the peers).
#
#   bench/proxy/run.sh             # installs the peers, builds sluice, full matrix (~8 min)
#   QUICK=1 ./run.sh               # ~1 min smoke version
#   ./run.sh 127.0.0.1:18090 gw    # add an already-running proxy as column "gw"
#   EXTRA_CMD='./gw --port 18090' ./run.sh 127.0.0.1:18090 gw
#                                  # ...or let the harness start it (pinned to
#                                  # the proxy CPU) and stop it at the end
#
# The extra proxy must forward to the backend at 127.0.0.1:18080 (paths /1k and
# /16k). Its PID (for CPU/RSS) is found from the listening socket, or EXTRA_PID.
#
# Placement: backend (1 nginx worker) + wrk (1 thread) on LOAD_CPU (0);
# the proxy under test alone on PROXY_CPU (1). Every proxy: 1 worker/thread.
#
# Env knobs (defaults in brackets; QUICK=1 changes the defaults):
#   DURATION [10|3] s per measured run     WARMUP [2|1] s unmeasured wrk first
#   CONNS ["50 500 5000"|"50 500"]         BODIES ["1k 16k"|"1k"]
#   REPS [1] repetitions (interleaved)     TARGETS ["direct nginx haproxy caddy sluice"]
#                                          (+ sluice-rl: sluice with an all-admitting rate limit;
#                                          sluice-guards: every guard on - rate limit, adaptive
#                                          concurrency with queue_delay, retries under a budget,
#                                          breaker, outlier detection - each admitting everything;
#                                          sluice-w2: two workers on both CPUs (sharing
#                                          LOAD_CPU with wrk and the backend);
#                                          sluice-reload: sluice reloading its config every
#                                          RELOAD_EVERY [0.1] s while measured
#                                          (bench/reload/reloader.py: POST /config/reload,
#                                          alternating a route timeout and the pool's
#                                          max_idle); compare with report.py --pool --base
#                                          sluice; sluice-reloader-idle: plain sluice with the
#                                          same reloader posting to a closed port (what the
#                                          reloader itself costs the load side);
#                                          nginx-hdr: nginx adding the headers sluice adds;
#                                          sluice-routes100 / sluice-hdr100: the request takes
#                                          the last of 100 routes, which fail on their path / on
#                                          a header (use WRK_HEADERS=browser); sluice-split: a
#                                          50/50 split over two clusters on the one backend;
#                                          sluice-mirror10: 10 % of requests copied to a mirror
#                                          cluster on the one backend; sluice-trace1 /
#                                          sluice-trace100: tracing on, 1 % / 100 % of requests
#                                          sampled, spans exported to the backend nginx, which
#                                          answers POST /v1/traces 200)
#   WRK_HEADERS [] header fields for every request, '|'-separated; "browser": eight typical
#                  ones and X-Tenant: t99
#   IDLE_CONNS [5000|1000] idle-conn memory test (0 = skip)
#   GAP [0] s extra pause between runs          WRK_THREADS [1]
#   PROXY_CPU [1]  LOAD_CPU [0]            TAG [] suffix for the results dir
#   QUIET_MAX [5] / QUIET_PCT [5]: before each run wait up to QUIET_MAX s for
#                  the box to be idle (< QUIET_PCT % of a core busy)
#   STEAL_MAX [5] OTHER_MAX [15] MAX_RETRY [2] RETRY_BUDGET [6]: a run with
#                  more hypervisor steal or foreign CPU than that is retried
#
# Results: results/<UTC time>[-TAG]/{raw.log,summary.md,wrk-*.txt,*.log}
# Everything started here is stopped (by PID) on exit, including on Ctrl-C.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The harness keeps its run state and results beside itself; from a read-only place, run a scratch copy.
if [[ ! -w "$HERE" ]]; then
  scratch=${PEERS_SCRATCH:-/tmp/peers-bench}
  mkdir -p "$scratch" && cp -r "$HERE"/run.sh "$HERE"/conf "$HERE"/tools "$scratch"/ || exit 1
  echo "harness folder is read-only; running a copy in $scratch" >&2
  exec "$scratch/run.sh" "$@"
fi
cd "$HERE" || exit 1
REPO="$(cd "$HERE/../.." && pwd)"
SLUICE_BIN=${SLUICE_BIN:-$REPO/build/release/sluice}
if [[ -z "${SLUICE_NO_BUILD:-}" ]]; then
  "$REPO/scripts/setup.sh" --bench || exit 1
  (cd "$REPO" && cmake --preset release >/dev/null && cmake --build --preset release --target sluice) || exit 1
fi

QUICK=${QUICK:-0}
if [[ "$QUICK" == 1 ]]; then
  DURATION=${DURATION:-3}; WARMUP=${WARMUP:-1}; CONNS=${CONNS:-"50 500"}
  BODIES=${BODIES:-"1k"}; IDLE_CONNS=${IDLE_CONNS:-1000}
else
  DURATION=${DURATION:-10}; WARMUP=${WARMUP:-2}; CONNS=${CONNS:-"50 500 5000"}
  BODIES=${BODIES:-"1k 16k"}; IDLE_CONNS=${IDLE_CONNS:-10000}
fi
REPS=${REPS:-1}
GAP=${GAP:-0}
WRK_THREADS=${WRK_THREADS:-1}
# WRK_HEADERS: request header fields wrk sends to every target, '|'-separated
# ("X-Tenant: t99|Accept: */*"); WRK_HEADERS=browser is a typical browser's eight plus X-Tenant.
WRK_HEADERS=${WRK_HEADERS:-}
[[ "$WRK_HEADERS" == browser ]] && WRK_HEADERS="User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36|Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8|Accept-Language: en-US,en;q=0.5|Accept-Encoding: gzip, deflate, br|Cookie: session=0123456789abcdef0123456789abcdef; theme=dark|Cache-Control: no-cache|X-Request-Start: t=1733300000|X-Tenant: t99"
WRK_HDR_ARGS=()
if [[ -n "$WRK_HEADERS" ]]; then
  IFS='|' read -r -a _hdrs <<<"$WRK_HEADERS"
  for h in "${_hdrs[@]}"; do WRK_HDR_ARGS+=(-H "$h"); done
fi
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
TARGETS=${TARGETS:-"direct nginx haproxy caddy sluice"}
TAG=${TAG:-}
QUIET_MAX=${QUIET_MAX:-5}     # max seconds to wait for an idle box before each run
QUIET_PCT=${QUIET_PCT:-5}     # "idle" = both cores together below this % of one core
PY=${PYTHON:-python3}
TIMEFORMAT='%U %S'            # bash `time` -> wrk's own user/sys CPU seconds
STEAL_MAX=${STEAL_MAX:-5}     # a run with more hypervisor steal (%) ...
OTHER_MAX=${OTHER_MAX:-15}    # ... or more foreign CPU (% of a core) is noisy:
MAX_RETRY=${MAX_RETRY:-2}     # retry it up to MAX_RETRY times,
RETRY_BUDGET=${RETRY_BUDGET:-6}  # at most RETRY_BUDGET retries per invocation

EXTRA_ADDR=${1:-}
EXTRA_NAME=${2:-extra}
EXTRA_CMD=${EXTRA_CMD:-}
EXTRA_PID=${EXTRA_PID:-}

declare -A PORT=([backend]=18080 [direct]=18080 [nginx]=18081 [haproxy]=18082 [caddy]=18083 [sluice]=18084 [sluice-rl]=18085 [nginx-hdr]=18086 [sluice-reload]=18087 [sluice-reloader-idle]=18088 [sluice-routes100]=18089 [sluice-hdr100]=18091 [sluice-split]=18092 [sluice-mirror10]=18093 [sluice-trace1]=18094 [sluice-trace100]=18095 [sluice-guards]=18096 [sluice-w2]=18097)
RELOAD_ADMIN=18097
RELOAD_EVERY=${RELOAD_EVERY:-0.1}
RELOADER=""
declare -A HOST=()
declare -A MPID=()      # target -> PID whose CPU/RSS is measured (worker)
STARTED=()              # PIDs this script started (stopped on exit)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cleanup() {
  local pid i
  trap - EXIT INT TERM
  for (( i=${#STARTED[@]}-1; i>=0; i-- )); do
    pid=${STARTED[$i]}
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored TERM, sending KILL"; kill -KILL "$pid" 2>/dev/null; }
    wait "$pid" 2>/dev/null
  done
  rm -f run/*/*.pid "${RES:-/nonexistent}/.wrk-rusage" 2>/dev/null
  [[ ${#STARTED[@]} -gt 0 ]] && log "stopped ${#STARTED[@]} process(es) started by this run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in wrk nginx haproxy caddy taskset ss curl "$PY"; do
  command -v "$t" >/dev/null || die "missing $t (apt-get install -y wrk nginx haproxy caddy)"
done

# ---- targets ---------------------------------------------------------------
if [[ -n "$EXTRA_ADDR" ]]; then
  [[ "$EXTRA_ADDR" == *:* ]] || die "extra target must be host:port"
  [[ -n "${PORT[$EXTRA_NAME]:-}" || "$EXTRA_NAME" == backend ]] && die "name '$EXTRA_NAME' is taken"
  PORT[$EXTRA_NAME]=${EXTRA_ADDR##*:}
  HOST[$EXTRA_NAME]=${EXTRA_ADDR%:*}
  TARGETS="$TARGETS $EXTRA_NAME"
fi
for t in $TARGETS; do : "${HOST[$t]:=127.0.0.1}"; done
HOST[backend]=127.0.0.1

# ---- limits ----------------------------------------------------------------
hard=$(ulimit -Hn); [[ "$hard" == unlimited ]] && hard=1048576
(( hard > 65536 )) && hard=65536
ulimit -n "$hard" || die "cannot raise ulimit -n"
# Under load every client connection may hold an upstream one too; idle clients share a small
# pool (the idle test opens them with bounded concurrency), so they need one fd each.
maxc=0; for c in $CONNS; do (( c > maxc )) && maxc=$c; done
need=$(( 2 * maxc + 200 )); (( IDLE_CONNS + 200 > need )) && need=$(( IDLE_CONNS + 200 ))
if (( need > $(ulimit -n) )); then
  die "ulimit -n is $(ulimit -n); this matrix needs ~$need fds per proxy (lower CONNS/IDLE_CONNS)"
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES="${RESULTS_DIR:-$REPO/bench/results}/${STAMP}${TAG:+-$TAG}"
mkdir -p "$RES"
RAW="$RES/raw.log"
rm -rf run && mkdir -p run

# ---- helpers -----------------------------------------------------------------
port_listening() { [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]; }

wait_port() {  # port pid name
  for _ in $(seq 100); do
    port_listening "$1" && return 0
    [[ -n "${2:-}" ]] && ! kill -0 "$2" 2>/dev/null && die "$3 exited during start-up (see $RES/$3.log)"
    sleep 0.1
  done
  die "$3 did not listen on port $1"
}

child_of() {  # first child pid of $1
  local c
  for _ in $(seq 100); do
    c=$(ps -o pid= --ppid "$1" | awk 'NR==1{print $1}')
    [[ -n "$c" ]] && { echo "$c"; return 0; }
    sleep 0.1
  done
  return 1
}

start_nginx() {  # name conf cpu port
  local name=$1 conf=$2 cpu=$3 port=$4 pfx="$HERE/run/$1/"
  port_listening "$port" && die "port $port already in use (stale run? check 'ss -ltnp')"
  mkdir -p "$pfx/tmp"
  if [[ $name == backend ]]; then
    mkdir -p "$pfx/www"
    head -c 1024 /dev/zero | tr '\0' 'x' > "$pfx/www/1k"
    head -c 16384 /dev/zero | tr '\0' 'x' > "$pfx/www/16k"
    chmod -R a+rX "$pfx"
  fi
  taskset -c "$cpu" nginx -p "$pfx" -c "$HERE/conf/$conf" -e "$pfx/error.log" \
      -g 'daemon off;' >"$RES/$name.log" 2>&1 &
  local pid=$!; STARTED+=("$pid")
  wait_port "$port" "$pid" "$name"
  MPID[$name]=$(child_of "$pid") || die "$name: no worker process"
  log "$name: nginx master $pid, worker ${MPID[$name]}, CPU $cpu, port $port"
}

start_haproxy() {
  port_listening "${PORT[haproxy]}" && die "port ${PORT[haproxy]} already in use"
  mkdir -p run/haproxy
  taskset -c "$PROXY_CPU" haproxy -f conf/haproxy.cfg -db >"$RES/haproxy.log" 2>&1 &
  local pid=$!; STARTED+=("$pid"); echo "$pid" > run/haproxy/haproxy.pid
  wait_port "${PORT[haproxy]}" "$pid" haproxy
  MPID[haproxy]=$pid
  log "haproxy: pid $pid, CPU $PROXY_CPU, port ${PORT[haproxy]}"
}

start_caddy() {
  port_listening "${PORT[caddy]}" && die "port ${PORT[caddy]} already in use"
  mkdir -p run/caddy/config run/caddy/data
  env GOMAXPROCS=1 XDG_CONFIG_HOME="$HERE/run/caddy/config" XDG_DATA_HOME="$HERE/run/caddy/data" \
    taskset -c "$PROXY_CPU" caddy run --config conf/Caddyfile --adapter caddyfile \
      --pidfile run/caddy/caddy.pid >"$RES/caddy.log" 2>&1 &
  local pid=$!; STARTED+=("$pid")
  wait_port "${PORT[caddy]}" "$pid" caddy
  MPID[caddy]=$pid
  log "caddy: pid $pid, CPU $PROXY_CPU, GOMAXPROCS=1, port ${PORT[caddy]}"
}

start_sluice() {
  # Same policy as the peers: one worker, no access log, upstream keep-alive without a request
  # cap and with as many idle connections kept as nginx's `keepalive 8192`.
  # `start_sluice sluice-rl` adds a per-client-IP rate limit that admits everything: the cost
  # of the guard itself (issue: rate-limit overhead within 3%).
  local t=${1:-sluice} route_extra="" top_extra="" timeout=15s max_idle=8192 routes_before=""
  local cluster_extra="" target="    cluster: backend" workers=1 cpus=$PROXY_CPU
  # Two workers on both CPUs (issue 20: two workers against one on this box): the load
  # generator and the backend keep CPU LOAD_CPU, which the second worker shares with them.
  [[ "$t" == sluice-w2 ]] && workers=2 cpus="$LOAD_CPU,$PROXY_CPU"
  [[ "$t" == sluice-rl ]] &&
    route_extra="    rate_limit: { rate: 1000000000/s, burst: 1000000000, key: client_ip }"
  # Every guard on, each admitting everything but doing its work on every request (issue 20:
  # all guards against none within 3 %): a per-client-IP rate limit, an adaptive concurrency
  # limit (auto, learning, its floor above any load here) with a time-managed queue, retries
  # under a budget, a circuit breaker and outlier detection on the cluster.
  if [[ "$t" == sluice-guards ]]; then
    route_extra="    rate_limit: { rate: 1000000000/s, burst: 1000000000, key: client_ip }
    concurrency:
      adaptive: { algorithm: auto, initial: 100000, min: 100000, max: 1000000 }
      queue: 1000
      queue_delay: { target: 5ms, interval: 100ms }
    retry: { attempts: 2, on: [connect-failure, reset, gateway-error] }"
    cluster_extra="    circuit_breaker: { window: 10s, minimum_calls: 50, failure_rate: 50, open_duration: 5s }
    retry_budget: { percent: 20, min_per_second: 5, window: 10s }
    outlier_detection: { consecutive_gateway_failure: 10, interval: 1s, base_ejection_time: 5s }"
  fi
  # Route tables of 100 where the request takes the last route (first match wins: the worst
  # case): 99 host+path routes that fail on their path, or 99 routes that fail on a header
  # (run with WRK_HEADERS carrying X-Tenant: t99 and a browser's other fields).
  local i
  if [[ "$t" == sluice-routes100 ]]; then
    for i in $(seq 0 98); do
      routes_before+="  - { name: r$i, cluster: backend, match: { host: 127.0.0.1, path_prefix: /svc$i/ } }"$'\n'
    done
    route_extra="    match: { host: 127.0.0.1, path_prefix: / }"
  elif [[ "$t" == sluice-hdr100 ]]; then
    for i in $(seq 0 98); do
      routes_before+="  - { name: r$i, cluster: backend, match: { path_prefix: /, headers: [{ name: x-tenant, exact: t$i }] } }"$'\n'
    done
    route_extra="    match: { path_prefix: /, headers: [{ name: x-tenant, exact: t99 }] }"
  elif [[ "$t" == sluice-split ]]; then
    # Two clusters on the one backend, half the requests each (drawn per request).
    cluster_extra="  - name: backend2
    endpoints: [127.0.0.1:${PORT[backend]}]
    pool: { max_connections: 20000, max_idle: ${max_idle}, idle_timeout: 60s }"
    target="    split: [{ cluster: backend, weight: 50 }, { cluster: backend2, weight: 50 }]"
  elif [[ "$t" == sluice-mirror10 ]]; then
    # A tenth of the requests copied to a second cluster on the one backend, responses dropped.
    cluster_extra="  - name: shadow
    endpoints: [127.0.0.1:${PORT[backend]}]
    pool: { max_connections: 20000, max_idle: ${max_idle}, idle_timeout: 60s }"
    route_extra="    mirror: { cluster: shadow, percent: 10 }"
  fi
  [[ "$t" == sluice-reload ]] && top_extra="admin: { address: 127.0.0.1:$RELOAD_ADMIN }"
  # Tracing: every request gets ids and a traceparent; the sampled share is recorded and
  # exported (the exporter thread runs on the proxy's CPU, so its cost is in the proxy's).
  local collector="http://127.0.0.1:${PORT[backend]}/v1/traces"
  [[ "$t" == sluice-trace1 ]] && top_extra="tracing: { otlp_endpoint: $collector, sample_ratio: 0.01 }"
  [[ "$t" == sluice-trace100 ]] && top_extra="tracing: { otlp_endpoint: $collector, sample_ratio: 1 }"
  port_listening "${PORT[$t]}" && die "port ${PORT[$t]} already in use"
  [[ -x "$SLUICE_BIN" ]] || die "no sluice binary at $SLUICE_BIN"
  mkdir -p "run/$t"
  sluice_yaml() {
  cat <<YAML
workers: ${workers}
${top_extra}
listeners:
  - name: bench
    address: 127.0.0.1:${PORT[$t]}
    timeouts: { idle: 75s }
clusters:
  - name: backend
    endpoints: [127.0.0.1:${PORT[backend]}]
    pool: { max_connections: 20000, max_idle: ${max_idle}, idle_timeout: 60s }
${cluster_extra}
routes:
${routes_before}  - name: all
${target}
    timeout: ${timeout}
${route_extra}
YAML
  }
  sluice_yaml > "run/$t/sluice.yaml"
  if [[ "$t" == sluice-reload ]]; then
    # The two configs the reloader alternates between: each reload changes the route (a new
    # plan) and the cluster's pool limits (applied in place to the worker's pools).
    cp "run/$t/sluice.yaml" "run/$t/a.yaml"
    timeout=16s max_idle=8191 sluice_yaml > "run/$t/b.yaml"
  fi
  taskset -c "$cpus" "$SLUICE_BIN" run -c "run/$t/sluice.yaml" >"$RES/$t.log" 2>&1 &
  local pid=$!; STARTED+=("$pid")
  wait_port "${PORT[$t]}" "$pid" "$t"
  MPID[$t]=$pid
  log "$t: pid $pid, CPU $cpus, $workers worker(s), port ${PORT[$t]}"
}

start_extra() {
  local t=$EXTRA_NAME port=${PORT[$EXTRA_NAME]}
  if [[ -n "$EXTRA_CMD" ]]; then
    port_listening "$port" && die "port $port already in use"
    mkdir -p "run/$t"
    taskset -c "$PROXY_CPU" bash -c "exec $EXTRA_CMD" >"$RES/$t.log" 2>&1 &
    local pid=$!; STARTED+=("$pid"); echo "$pid" > "run/$t/$t.pid"
    wait_port "$port" "$pid" "$t"
    MPID[$t]=${EXTRA_PID:-$pid}
    log "$t: started pid $pid on CPU $PROXY_CPU ($EXTRA_CMD)"
  else
    if [[ -n "$EXTRA_PID" ]]; then
      MPID[$t]=$EXTRA_PID
    else
      MPID[$t]=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
    fi
    if [[ -n "${MPID[$t]}" ]]; then
      local aff; aff=$(taskset -cp "${MPID[$t]}" 2>/dev/null | awk -F': ' '{print $2}')
      log "$t: pre-started, measuring pid ${MPID[$t]} (CPU affinity: $aff)"
      [[ "$aff" != "$PROXY_CPU" ]] && log "WARNING: $t is not pinned to CPU $PROXY_CPU alone; comparison is unfair (use taskset -c $PROXY_CPU)"
    else
      log "WARNING: no local PID for $t; CPU/RSS columns will be n/a"
    fi
  fi
}

# sluice-reload: a config reload every RELOAD_EVERY s while a run is measured, from the load CPU
# (like wrk; the reload's own work is the proxy's and is counted in its CPU), by one long-lived
# process (bench/reload/reloader.py): a shell loop forking cp and curl would load wrk's core.
start_reloader() {  # [admin port] [file it rewrites]
  local dir="$HERE/run/sluice-reload"
  taskset -c "$LOAD_CPU" "$PY" "$REPO/bench/reload/reloader.py" "${2:-$dir/sluice.yaml}" \
    "$dir/a.yaml" "$dir/b.yaml" "${1:-$RELOAD_ADMIN}" \
    "$RELOAD_EVERY" >"$HERE/run/sluice-reload/reloads" &
  RELOADER=$!; STARTED+=("$RELOADER")
}
stop_reloader() {  # the reloads applied meanwhile are then in run/sluice-reload/reloads
  kill -TERM "$RELOADER" 2>/dev/null; wait "$RELOADER" 2>/dev/null
}

cpu_snap() {  # prints "busy0 total0 steal0 busy1 total1 steal1" (jiffies)
  awk -v a="cpu$LOAD_CPU" -v b="cpu$PROXY_CPU" '
    $1==a || $1==b { busy=$2+$3+$4+$7+$8; tot=busy+$5+$6+$9; s[$1]=busy" "tot" "$9 }
    END { print s[a], s[b] }' /proc/stat
}
proc_ticks() {  # utime+stime of a process (all threads), or empty
  [[ -n "${1:-}" && -r /proc/$1/stat ]] || return 0
  local st; st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  st=${st##*) }   # drop "pid (comm) "
  awk '{print $12+$13}' <<<"$st"
}
be_accepts() {  # backend nginx "accepts" counter (includes this query itself)
  curl -s "http://127.0.0.1:${PORT[backend]}/nginx_status" | awk 'NR==3{print $1}'
}
status_kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status" 2>/dev/null; }
now() { date +%s.%N; }

# ---- start everything ------------------------------------------------------
log "results -> $RES"
start_nginx backend nginx-backend.conf "$LOAD_CPU" "${PORT[backend]}"
MPID[direct]=${MPID[backend]}
for t in $TARGETS; do
  case $t in
    direct) ;;
    nginx) start_nginx nginx nginx-proxy.conf "$PROXY_CPU" "${PORT[nginx]}" ;;
    nginx-hdr) start_nginx nginx-hdr nginx-proxy-headers.conf "$PROXY_CPU" "${PORT[nginx-hdr]}" ;;
    haproxy) start_haproxy ;;
    caddy) start_caddy ;;
    sluice|sluice-rl|sluice-guards|sluice-w2|sluice-reload|sluice-reloader-idle|sluice-routes100|sluice-hdr100|sluice-split|sluice-mirror10|sluice-trace1|sluice-trace100)
      start_sluice "$t" ;;
    "$EXTRA_NAME") start_extra ;;
    *) die "unknown target $t" ;;
  esac
done

# sanity: every target returns 200 with the exact body size
for t in $TARGETS; do
  for b in $BODIES; do
    want=$(( ${b%k} * 1024 ))
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "${WRK_HDR_ARGS[@]}" \
        "http://${HOST[$t]}:${PORT[$t]}/$b")
    [[ "$got" == "200 $want" ]] || die "$t /$b returned '$got', expected '200 $want'"
  done
done
log "sanity check ok: $TARGETS"

{
  echo "META date=$STAMP duration=$DURATION warmup=$WARMUP reps=$REPS steal_max=$STEAL_MAX other_max=$OTHER_MAX conns=${CONNS// /,} bodies=${BODIES// /,} targets=${TARGETS// /,} proxy_cpu=$PROXY_CPU load_cpu=$LOAD_CPU wrk_threads=$WRK_THREADS ulimit_n=$(ulimit -n)"
  echo "META v_sluice=$("$SLUICE_BIN" version | awk '{print $2}')@$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null) cpu=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo | tr ' ' '_') nproc=$(nproc)"
  echo "META v_nginx=$(nginx -v 2>&1 | sed 's|.*/||') v_haproxy=$(haproxy -v | awk 'NR==1{print $3}') v_caddy=$(caddy version | awk '{print $1}') v_wrk=$(wrk -v 2>&1 | awk 'NR==1{print $2}') v_kernel=$(uname -r)"
} >> "$RAW"

# ---- idle keep-alive connection memory ---------------------------------------
if (( IDLE_CONNS > 0 )); then
  for t in $TARGETS; do
    [[ -n "${MPID[$t]:-}" ]] || continue
    out=$(taskset -c "$LOAD_CPU" "$PY" tools/idle_conns.py --host "${HOST[$t]}" --port "${PORT[$t]}" \
            --pid "${MPID[$t]}" -n "$IDLE_CONNS" 2>>"$RES/idle.err")
    echo "${out/IDLE /IDLE target=$t }" | tee -a "$RAW" >&2
    sleep 1
  done
fi

# ---- load matrix -------------------------------------------------------------
nt=$(wc -w <<<"$TARGETS"); nc=$(wc -w <<<"$CONNS"); nb=$(wc -w <<<"$BODIES")
total=$(( nt * nc * nb * REPS )); i=0
log "matrix: $total runs x (${WARMUP}s warm-up + ${DURATION}s) ~ $(( total * (WARMUP + DURATION + GAP + 2) / 60 + 1 )) min"
for body in $BODIES; do
  for c in $CONNS; do
    for rep in $(seq "$REPS"); do
      for t in $TARGETS; do
        i=$((i + 1))
        url="http://${HOST[$t]}:${PORT[$t]}/$body"
        (( WARMUP > 0 )) && taskset -c "$LOAD_CPU" wrk -t"$WRK_THREADS" -c"$c" -d"${WARMUP}s" \
            --timeout 10s "${WRK_HDR_ARGS[@]}" "$url" >/dev/null 2>&1
        attempt=0
        while :; do
          # Quiet window: wait (1-QUIET_MAX s) until the whole box is idle, i.e.
          # leftovers of the previous run (socket teardown, Go GC) and other jobs
          # on the box have calmed down. bg% = busy CPU in the last 1 s window,
          # both cores summed, % of one core (should be ~0-5).
          for _q in $(seq "$QUIET_MAX"); do
            q0=$(cpu_snap); sleep 1; q1=$(cpu_snap)
            bg=$(awk -v a="$q0" -v b="$q1" 'BEGIN { split(a, x); split(b, y)
                  printf "%.1f", 100*((y[1]-x[1]) + (y[4]-x[4]))/(y[2]-x[2]+1e-9) }')
            awk -v b="$bg" -v m="$QUIET_PCT" 'BEGIN { exit !(b < m) }' && break
          done
          tw=$(ss -Htan state time-wait | wc -l)
          n0=$(be_accepts)
          c0=$(cpu_snap); p0=$(proc_ticks "${MPID[$t]:-}"); b0=$(proc_ticks "${MPID[backend]}"); t0=$(now)
          wout="$RES/wrk-$body-c$c-r$rep-$t.txt"
          [[ $t == sluice-reload ]] && start_reloader
          [[ $t == sluice-reloader-idle ]] &&  # nothing listens on port 1
            start_reloader 1 "$HERE/run/sluice-reload/scratch.yaml"
          { time taskset -c "$LOAD_CPU" wrk -t"$WRK_THREADS" -c"$c" -d"${DURATION}s" --timeout 10s --latency \
              "${WRK_HDR_ARGS[@]}" -s tools/report.lua "$url" >"$wout" 2>&1 ; } 2>"$RES/.wrk-rusage"
          t1=$(now); p1=$(proc_ticks "${MPID[$t]:-}"); b1=$(proc_ticks "${MPID[backend]}"); c1=$(cpu_snap)
          reloads=""
          if [[ $t == sluice-reload || $t == sluice-reloader-idle ]]; then
            stop_reloader
            reloads="reloads=$(cat "$HERE/run/sluice-reload/reloads")"
          fi
          n1=$(be_accepts)
          res=$(grep '^RESULT ' "$wout" | sed 's/^RESULT //')
          [[ -n "$res" ]] || { log "wrk failed for $t c=$c $body (see $wout)"; res="rps=0"; }
          extra=$(awk -v c0="$c0" -v c1="$c1" -v p0="${p0:-}" -v p1="${p1:-}" -v b0="$b0" -v b1="$b1" \
                      -v t0="$t0" -v t1="$t1" -v wr="$(cat "$RES/.wrk-rusage")" -v direct="$([[ $t == direct ]] && echo 1)" 'BEGIN {
            split(c0, a); split(c1, b); split(wr, w); wall = t1 - t0
            u0 = 100*(b[1]-a[1])/(b[2]-a[2]); u1 = 100*(b[4]-a[4])/(b[5]-a[5])
            printf "cpu0=%.1f cpu1=%.1f steal=%.1f", u0, u1, \
                   100*((b[3]-a[3])+(b[6]-a[6]))/((b[2]-a[2])+(b[5]-a[5]))
            be = (b1-b0)/wall; wrk = 100*(w[1]+w[2])/wall          # ticks are 1/100 s
            printf " be_cpu=%.1f wrk_cpu=%.1f", be, wrk
            tg = 0
            if (p0 != "" && p1 != "") { tg = (p1-p0)/wall; printf " tgt_cpu=%.1f", tg }
            if (direct) tg = 0
            # CPU not explained by wrk/backend/target: other jobs on the box
            other = u0 + u1 - be - wrk - tg; if (other < 0) other = 0
            printf " other_cpu=%.1f", other
          }')
          mem=""
          if [[ -n "${MPID[$t]:-}" ]]; then
            mem="rss_kb=$(status_kb "${MPID[$t]}" VmRSS) hwm_kb=$(status_kb "${MPID[$t]}" VmHWM)"
          fi
          line="RUN body=$body conns=$c rep=$rep target=$t $res $extra $mem tw=$tw bg=$bg be_new_conns=$(( n1 - n0 - 1 )) $reloads"
          rps=$(grep -o 'rps=[0-9.]*' <<<"$res" | cut -d= -f2)
          log "[$i/$total] $body c=$c rep=$rep $t: ${rps} req/s  ($extra bg=$bg new_upstream=$(( n1 - n0 - 1 )))"
          # Host noise check: the VM's vCPUs get stolen by the hypervisor in bursts
          # (seen up to 46% steal) and other jobs may share the box. Retry such a
          # run (bounded by RETRY_BUDGET per invocation); keep the bad attempt
          # in raw.log as DISCARD for the record.
          noisy=$(awk -v e="$extra" -v sm="$STEAL_MAX" -v om="$OTHER_MAX" 'BEGIN {
                    n = split(e, f, " "); for (k = 1; k <= n; k++) { split(f[k], kv, "="); v[kv[1]] = kv[2] }
                    print ((v["steal"] + 0 > sm || v["other_cpu"] + 0 > om) ? 1 : 0) }')
          if [[ $noisy == 1 && $attempt -lt $MAX_RETRY && $RETRY_BUDGET -gt 0 ]]; then
            attempt=$((attempt + 1)); RETRY_BUDGET=$((RETRY_BUDGET - 1))
            echo "DISCARD ${line#RUN }" >> "$RAW"
            log "   ^ noisy (steal/other above $STEAL_MAX/$OTHER_MAX %), retrying ($attempt/$MAX_RETRY, budget left $RETRY_BUDGET)"
            continue
          fi
          echo "$line" >> "$RAW"
          break
        done
        sleep "$GAP"
      done
    done
  done
done

"$PY" tools/report.py "$RAW" > "$RES/summary.md"
echo
cat "$RES/summary.md"
log "raw data and wrk outputs in $RES"
