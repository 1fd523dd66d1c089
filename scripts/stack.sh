#!/usr/bin/env bash
# scripts/stack.sh: run fairflag's real dependencies on this machine without a Docker engine.
#
#   Kafka 3.9 (single-node KRaft)   jars from Maven Central, run on the default JDK (>= 17)
#   Apicurio Registry 3.3 (ccompat)  tarball from Maven Central, run on a JDK >= 21
#   Redis                            the Debian redis-server binary, our own instance
#
# Everything (download cache, data, logs, pid files) lives in .stack/ at the repo root. A second
# instance (e.g. the fault tests', which stop and restart services) gets its own data, logs and pid
# files with FAIRFLAG_STACK_STATE=<dir> and its own ports with FAIRFLAG_STACK_*_PORT; the download
# cache stays shared in .stack/. Run `scripts/stack.sh --help` for the commands. With a Docker
# engine, docker-compose.yml starts the same three services instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="$ROOT/.stack" # download cache, shared by every instance
# This instance's data, logs and pid files: .stack/ itself for the default instance.
if [[ -n "${FAIRFLAG_STACK_STATE:-}" ]]; then
  STATE="$(realpath -m -- "$FAIRFLAG_STACK_STATE")"
else
  STATE="$STACK"
fi
# Durable services (FAIRFLAG_STACK_DURABLE=1): Redis appends to a file and the registry keeps its
# schemas in an H2 file, so a stop/start of one service loses nothing, as in production. The
# default is neither: a clean store and registry per stack.
DURABLE="${FAIRFLAG_STACK_DURABLE:-0}"
HOST=127.0.0.1

KAFKA_VERSION=3.9.2
REGISTRY_VERSION=3.3.3

KAFKA_PORT="${FAIRFLAG_STACK_KAFKA_PORT:-29092}"
# The controller listener is internal to the broker; clients never talk to it.
KAFKA_CONTROLLER_PORT="${FAIRFLAG_STACK_KAFKA_CONTROLLER_PORT:-29093}"
REGISTRY_PORT="${FAIRFLAG_STACK_REGISTRY_PORT:-28081}"
REDIS_PORT="${FAIRFLAG_STACK_REDIS_PORT:-26379}"

# Seconds to wait for a service to answer after starting it.
KAFKA_TIMEOUT="${FAIRFLAG_STACK_KAFKA_TIMEOUT:-90}"
REGISTRY_TIMEOUT="${FAIRFLAG_STACK_REGISTRY_TIMEOUT:-120}"
REDIS_TIMEOUT="${FAIRFLAG_STACK_REDIS_TIMEOUT:-15}"
# Seconds between SIGTERM and SIGKILL on stop.
STOP_TIMEOUT="${FAIRFLAG_STACK_STOP_TIMEOUT:-30}"

KAFKA_HOME="$STACK/kafka"            # pom.xml, libs/ (cache)
KAFKA_STATE="$STATE/kafka"           # config, data/ (wiped by down); = KAFKA_HOME by default
REGISTRY_HOME="$STACK/registry"      # unpacked Apicurio archive (cache)
REGISTRY_STATE="$STATE/registry-data" # H2 files when durable (wiped by down)
REDIS_HOME="$STATE/redis"            # redis working dir (wiped by down)
RUN="$STATE/run"                     # pid files
LOGS="$STATE/logs"                   # one log file per service

SERVICES=(kafka registry redis)

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

say() { printf '%s\n' "$*"; }
err() { printf 'stack.sh: %s\n' "$*" >&2; }
die() {
  err "$*"
  exit 1
}

# Runs a download step under a lock on the shared cache: two instances starting together fetch once.
cached() {
  if command -v flock >/dev/null 2>&1; then
    (
      flock 8
      "$@"
    ) 8>"$STACK/.cache.lock" || exit 1
  else
    "$@"
  fi
}

now_ms() { date +%s%3N; }
# Seconds since a now_ms timestamp, one decimal.
since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# One aligned progress line per service: "kafka      ready on 127.0.0.1:29092 (4.2 s)".
line() { printf '%-10s %s\n' "$1" "$2"; }

# True if something accepts TCP connections on the port. Uses bash's /dev/tcp so no netcat needed.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

pid_file() { echo "$RUN/$1.pid"; }
port_file() { echo "$RUN/$1.port"; } # the port it was started on, in case overrides change later
log_file() { echo "$LOGS/$1.log"; }

# Pid of a service we started, if that process is still alive and is really this instance's, so a
# recycled pid or another instance's process is never mistaken for (or killed as) ours. The JVMs
# carry -Dfairflag.stack=<state dir> on their command line; redis-server rewrites its command
# line, so it is known by its working directory. JVMs started before the marker existed belong to
# the default instance if their command line or working directory points into .stack/.
live_pid() {
  local f pid cmd cwd
  f="$(pid_file "$1")"
  [[ -s "$f" ]] || return 1
  pid="$(<"$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
  cwd="$(readlink -f "/proc/$pid/cwd" 2>/dev/null || true)"
  if [[ "$1" == redis ]]; then
    [[ -n "$cwd" && "$cwd" == "$(readlink -f "$REDIS_HOME")" ]] || return 1
  elif [[ "$cmd" == *"-Dfairflag.stack="* ]]; then
    [[ "$cmd" == *"-Dfairflag.stack=$STATE "* ]] || return 1
  else
    [[ "$STATE" == "$STACK" ]] || return 1
    [[ "$cmd" == *"$STACK"* || "$cwd" == "$STACK"* ]] || return 1
  fi
  echo "$pid"
}

# Like live_pid, but only if it was started on the port configured now.
our_pid() {
  local pid
  pid="$(live_pid "$1")" || return 1
  [[ "$(cat "$(port_file "$1")" 2>/dev/null)" == "$(service_port "$1")" ]] || return 1
  echo "$pid"
}

# Major version of a java binary: 'openjdk version "17.0.15"' -> 17, '"1.8.0_392"' -> 8.
java_major() {
  local v
  v="$("$1" -version 2>&1 | awk -F'"' '/version/ { print $2; exit }')" || return 1
  [[ -n "$v" ]] || return 1
  v="${v#1.}"
  echo "${v%%[.+-]*}"
}

# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------

check_tools() {
  local missing=() tool pkg pair m
  # tool:Debian package that provides it
  for pair in java:openjdk-17-jre-headless mvn:maven redis-server:redis-server redis-cli:redis-tools \
    curl:curl tar:tar timeout:coreutils; do
    tool="${pair%%:*}"
    pkg="${pair#*:}"
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool (apt-get install -y $pkg)")
  done
  if ((${#missing[@]})); then
    err "missing tools needed to run the local stack:"
    for m in "${missing[@]}"; do err "  $m"; done
    exit 1
  fi
  local major
  major="$(java_major java)" || die "cannot read the version of 'java'"
  ((major >= 17)) || die "Kafka needs Java 17 or newer, default java is $major (apt-get install -y openjdk-17-jre-headless)"
}

# Apicurio Registry 3.3 is compiled for Java 21 (class file 65): on Java 17 it dies with
# UnsupportedClassVersionError. Pick $FAIRFLAG_REGISTRY_JAVA_HOME, else the default java if it is
# new enough, else the newest JDK >= 21 under /usr/lib/jvm.
registry_java() {
  local j major best="" best_major=0
  if [[ -n "${FAIRFLAG_REGISTRY_JAVA_HOME:-}" ]]; then
    j="$FAIRFLAG_REGISTRY_JAVA_HOME/bin/java"
    [[ -x "$j" ]] || die "FAIRFLAG_REGISTRY_JAVA_HOME=$FAIRFLAG_REGISTRY_JAVA_HOME has no bin/java"
    major="$(java_major "$j")" || die "cannot read the version of $j"
    ((major >= 21)) || die "FAIRFLAG_REGISTRY_JAVA_HOME points to Java $major; Apicurio Registry $REGISTRY_VERSION needs Java 21 or newer"
    echo "$j"
    return
  fi
  major="$(java_major java 2>/dev/null || echo 0)"
  if ((major >= 21)); then
    command -v java
    return
  fi
  for j in /usr/lib/jvm/*/bin/java; do
    [[ -x "$j" ]] || continue
    major="$(java_major "$j" 2>/dev/null)" || continue
    if ((major >= 21 && major > best_major)); then
      best="$j"
      best_major="$major"
    fi
  done
  [[ -n "$best" ]] || die "Apicurio Registry $REGISTRY_VERSION needs Java 21 or newer and none was found (default java is $(java_major java), nothing >= 21 under /usr/lib/jvm). Install a JDK 21+ (e.g. Temurin 21 or 25, or openjdk-21-jre-headless where your Debian has it) under /usr/lib/jvm, or set FAIRFLAG_REGISTRY_JAVA_HOME to one."
  echo "$best"
}

# ---------------------------------------------------------------------------------------------
# Downloads (cached in .stack/, reused by every later `up`)
# ---------------------------------------------------------------------------------------------

# Kafka has no single distribution artifact on Maven Central, so resolve the broker's runtime
# classpath with a generated pom. 3.9's pom brings no logging backend: add reload4j + its slf4j bridge.
fetch_kafka() {
  local libs="$KAFKA_HOME/libs" marker="$KAFKA_HOME/libs/.complete-$KAFKA_VERSION"
  [[ -f "$marker" ]] && return 0
  local t0
  t0="$(now_ms)"
  mkdir -p "$KAFKA_HOME"
  rm -rf "$libs"
  cat >"$KAFKA_HOME/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.fairflag</groupId>
  <artifactId>stack-kafka</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-server</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
  line kafka "resolving Kafka $KAFKA_VERSION jars with Maven ..."
  mvn -q -B -f "$KAFKA_HOME/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime >"$LOGS/kafka-maven.log" 2>&1 || {
    tail -n 30 "$LOGS/kafka-maven.log" >&2
    die "Maven could not resolve the Kafka jars (full log: $LOGS/kafka-maven.log)"
  }
  touch "$marker"
  line kafka "$(find "$libs" -name '*.jar' | wc -l) jars in $(since "$t0") s"
}

fetch_registry() {
  local dir="$REGISTRY_HOME/apicurio-registry-$REGISTRY_VERSION"
  [[ -f "$dir/quarkus-run.jar" ]] && return 0
  local t0 dl="$REGISTRY_HOME/download"
  t0="$(now_ms)"
  mkdir -p "$dl"
  line registry "fetching Apicurio Registry $REGISTRY_VERSION with Maven ..."
  mvn -q -B dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:tar.gz:all" \
    -DoutputDirectory="$dl" >"$LOGS/registry-maven.log" 2>&1 || {
    tail -n 30 "$LOGS/registry-maven.log" >&2
    die "Maven could not fetch Apicurio Registry (full log: $LOGS/registry-maven.log)"
  }
  # Unpack beside the final name and rename, so an interrupted untar never looks complete.
  rm -rf "$dir" "$dir.partial"
  mkdir -p "$dir.partial"
  tar -xzf "$dl/apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz" -C "$dir.partial"
  [[ -f "$dir.partial/quarkus-run.jar" ]] || die "the Apicurio archive has no quarkus-run.jar at its root"
  mv "$dir.partial" "$dir"
  rm -rf "$dl" # the unpacked copy is the cache; Maven keeps the tarball in ~/.m2 too
  line registry "unpacked in $(since "$t0") s"
}

# ---------------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------------

# Regenerated on every start so port overrides take effect.
write_kafka_config() {
  mkdir -p "$KAFKA_STATE"
  cat >"$KAFKA_STATE/server.properties" <<EOF
# Generated by scripts/stack.sh: single-node KRaft broker+controller for local development and tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_STATE/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
# The processor and the tests create their topics explicitly: a typo must not create a topic.
auto.create.topics.enable=false
num.partitions=3
EOF
  # Everything goes to stdout, which start_kafka redirects to .stack/logs/kafka.log, so JVM crash
  # messages and Kafka's own log end up in one file. INFO for the startup milestones we wait for,
  # WARN for the chatty per-partition loggers.
  cat >"$KAFKA_STATE/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.log=WARN
log4j.logger.kafka.cluster=WARN
log4j.logger.kafka.server.ReplicaFetcherManager=WARN
log4j.logger.kafka.server.ReplicaAlterLogDirsManager=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.org.apache.kafka.coordinator=WARN
log4j.logger.kafka.coordinator=WARN
EOF
}

kafka_java() { java -Dlog4j.configuration="file:$KAFKA_STATE/log4j.properties" -cp "$KAFKA_HOME/libs/*" "$@"; }

# Format the log dir once per cluster; `down` wipes data/, so the next `up` formats a fresh one.
format_kafka() {
  [[ -f "$KAFKA_STATE/data/meta.properties" ]] && return 0
  local uuid
  uuid="$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$(log_file kafka)" | tail -n 1)"
  kafka_java kafka.tools.StorageTool format -t "$uuid" -c "$KAFKA_STATE/server.properties" \
    >>"$(log_file kafka)" 2>&1 || die "formatting the Kafka log dir failed: $(tail -n 5 "$(log_file kafka)")"
}

# Kafka protocol probe without a client library: send ApiVersions v0 (api key 18, correlation id
# 7, client id "ff") and expect a response carrying correlation id 7 and error code 0. The broker
# only answers once its socket server accepts requests, late in startup.
kafka_answers() {
  # shellcheck disable=SC2016 # $0 and $1 are the inner shell's arguments
  timeout 3 bash -c '
    exec 3<>/dev/tcp/$0/$1 || exit 1
    printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x07\x00\x02ff" >&3
    head -c 10 <&3 | od -An -tx1 | tr -d " \n"
  ' "$HOST" "$KAFKA_PORT" 2>/dev/null | grep -Eq '^[0-9a-f]{8}000000070000$'
}

# Ready = answers the protocol and, when we started it, has logged that startup finished
# (by then the broker has registered with its controller and caught up on metadata).
kafka_ready() {
  kafka_answers || return 1
  our_pid kafka >/dev/null || return 0
  grep -q 'Kafka Server started' "$(log_file kafka)"
}

start_kafka() {
  cached fetch_kafka
  write_kafka_config
  : >"$(log_file kafka)"
  format_kafka
  # setsid + </dev/null + output to the log file: the broker must not hold the caller's terminal
  # or pipes (a test runner that spawns `stack.sh up` waits for its stdout to close), nor our
  # lock (fd 9), or the next stack.sh would wait for the broker to exit.
  setsid java -Xmx768m -Dfairflag.stack="$STATE" -Dlog4j.configuration="file:$KAFKA_STATE/log4j.properties" \
    -Dkafka.logs.dir="$LOGS" -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$KAFKA_STATE/server.properties" \
    </dev/null >>"$(log_file kafka)" 2>&1 9>&- &
  echo $! >"$(pid_file kafka)"
}

# ---------------------------------------------------------------------------------------------
# Apicurio Registry (Confluent-compatible API at /apis/ccompat/v7, in-memory H2 storage)
# ---------------------------------------------------------------------------------------------

registry_url() { echo "http://$HOST:$REGISTRY_PORT/apis/ccompat/v7"; }

registry_ready() {
  local body
  body="$(curl -fsS --max-time 2 "$(registry_url)/subjects" 2>/dev/null)" || return 1
  [[ "$body" == \[* ]]
}

start_registry() {
  cached fetch_registry
  local java_bin storage=()
  java_bin="$(registry_java)"
  if [[ "$DURABLE" == 1 ]]; then
    mkdir -p "$REGISTRY_STATE"
    storage=("-Dapicurio.datasource.url=jdbc:h2:file:$REGISTRY_STATE/registry")
  fi
  : >"$(log_file registry)"
  echo "# java: $java_bin (Java $(java_major "$java_bin"))" >>"$(log_file registry)"
  # Run from the archive root: Quarkus finds lib/ and quarkus/ relative to quarkus-run.jar.
  # Storage is the default in-memory H2 database (schemas are registered again on every start),
  # or an H2 file in the state directory when durable. (Detached like Kafka, see start_kafka.)
  (
    cd "$REGISTRY_HOME/apicurio-registry-$REGISTRY_VERSION"
    # Quarkus also opens a management (health/metrics) interface, by default on 0.0.0.0:9000: that
    # port would clash with a second checkout's registry or anything else on 9000, and we probe the
    # ccompat API instead, so put it on a random loopback port.
    exec setsid "$java_bin" -Xmx512m -Dfairflag.stack="$STATE" "${storage[@]}" \
      -Dquarkus.http.host="$HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
      -Dquarkus.management.host="$HOST" -Dquarkus.management.port=0 \
      -jar quarkus-run.jar </dev/null >>"$(log_file registry)" 2>&1 9>&-
  ) &
  echo $! >"$(pid_file registry)"
}

# ---------------------------------------------------------------------------------------------
# Redis (our own instance; the system one on 6379 is not ours to use or stop)
# ---------------------------------------------------------------------------------------------

redis_ready() { [[ "$(timeout 2 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

start_redis() {
  mkdir -p "$REDIS_HOME"
  : >"$(log_file redis)"
  # No persistence by default: tests want a clean store per stack. Durable: an append-only file,
  # flushed on shutdown, so `stop redis` then `start redis` keeps every written feature.
  # redis-server daemonizes itself and writes its own pid file.
  local log aof=no
  [[ "$DURABLE" == 1 ]] && aof=yes
  log="$(log_file redis)"
  # shellcheck disable=SC2094 # redis-server writes its log itself; we only append its stderr
  redis-server --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly "$aof" \
    --dir "$REDIS_HOME" --daemonize yes --pidfile "$(pid_file redis)" --logfile "$log" \
    </dev/null >>"$log" 2>&1 9>&- || {
    fail_with_log redis "redis-server did not start"
    return 1
  }
}

# ---------------------------------------------------------------------------------------------
# Generic service control
# ---------------------------------------------------------------------------------------------

endpoint() {
  case "$1" in
    kafka) echo "$HOST:$KAFKA_PORT" ;;
    registry) registry_url ;;
    redis) echo "redis://$HOST:$REDIS_PORT" ;;
  esac
}

service_port() {
  case "$1" in
    kafka) echo "$KAFKA_PORT" ;;
    registry) echo "$REGISTRY_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
  esac
}

service_timeout() {
  case "$1" in
    kafka) echo "$KAFKA_TIMEOUT" ;;
    registry) echo "$REGISTRY_TIMEOUT" ;;
    redis) echo "$REDIS_TIMEOUT" ;;
  esac
}

ready() { "${1}_ready"; }

valid_service() {
  case "${1:-}" in
    kafka | registry | redis) return 0 ;;
    *) die "unknown service '${1:-}' (expected one of: ${SERVICES[*]})" ;;
  esac
}

# Launch a service unless something already answers on its port; the caller then waits with
# wait_ready. Returns 1 (after explaining) if the port is taken by something that is not the service.
launch() {
  local svc="$1" pid
  ready "$svc" && return 0
  if pid="$(live_pid "$svc")"; then
    # Ours and still starting (e.g. a previous `up` timed out): wait for it.
    our_pid "$svc" >/dev/null && return 0
    line "$svc" "FAILED: stack.sh's $svc (pid $pid) runs on port $(cat "$(port_file "$svc")" 2>/dev/null || echo '?'), not $(service_port "$svc"): stop it first (scripts/stack.sh stop $svc)"
    return 1
  fi
  if port_open "$(service_port "$svc")"; then
    line "$svc" "FAILED: port $(service_port "$svc") is in use by something that does not answer as $svc"
    return 1
  fi
  if [[ "$svc" == kafka ]] && port_open "$KAFKA_CONTROLLER_PORT"; then
    line kafka "FAILED: controller port $KAFKA_CONTROLLER_PORT is in use (FAIRFLAG_STACK_KAFKA_CONTROLLER_PORT picks another)"
    return 1
  fi
  rm -f "$(pid_file "$svc")"
  service_port "$svc" >"$(port_file "$svc")"
  "start_$svc"
}

# Our process for the service has exited (only known once a pid file exists: redis writes its own
# after daemonizing).
died() { [[ -s "$(pid_file "$1")" ]] && ! live_pid "$1" >/dev/null; }

# The tail of a service's log, without Java stack frames, so the exception messages and their
# "Caused by" lines (where the reason is) fit on screen.
fail_with_log() {
  line "$1" "FAILED: $2; last lines of $(log_file "$1") (stack frames left out):"
  grep -v -E '^[[:space:]]+(at |\.\.\. [0-9]+ more)' "$(log_file "$1")" 2>/dev/null | tail -n 20 |
    cut -c1-400 | sed 's/^/    /' >&2 || true
}

# Wait for the launched services together, polling each in turn, so every progress line shows
# when that service itself became ready. Arguments: service=start_ms pairs.
wait_ready() {
  local -A t0=() deadline=()
  local pending=() next=() svc pair rc=0
  for pair in "$@"; do
    svc="${pair%%=*}"
    t0[$svc]="${pair#*=}"
    deadline[$svc]=$((${pair#*=} / 1000 + $(service_timeout "$svc")))
    pending+=("$svc")
  done
  while ((${#pending[@]})); do
    next=()
    for svc in "${pending[@]}"; do
      if ready "$svc"; then
        line "$svc" "ready on $(endpoint "$svc") ($(since "${t0[$svc]}") s)"
      elif died "$svc"; then
        fail_with_log "$svc" "process exited after $(since "${t0[$svc]}") s"
        rc=1
      elif (($(date +%s) >= ${deadline[$svc]})); then
        fail_with_log "$svc" "not ready after $(service_timeout "$svc") s"
        rc=1
      else
        next+=("$svc")
      fi
    done
    pending=("${next[@]+"${next[@]}"}")
    ((${#pending[@]} == 0)) || sleep 0.2
  done
  return "$rc"
}

# A zombie (exited, not yet reaped by init) counts as stopped.
alive() {
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# Stop a service we started: SIGTERM, wait, SIGKILL after STOP_TIMEOUT.
stop_service() {
  local svc="$1" pid i t0
  if ! pid="$(live_pid "$svc")"; then
    rm -f "$(pid_file "$svc")" "$(port_file "$svc")"
    if ready "$svc"; then
      line "$svc" "answers on $(endpoint "$svc") but was not started by stack.sh: left alone"
    else
      line "$svc" "not running"
    fi
    return 0
  fi
  t0="$(now_ms)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    line "$svc" "killed (still running ${STOP_TIMEOUT} s after SIGTERM)"
  else
    line "$svc" "stopped ($(since "$t0") s)"
  fi
  rm -f "$(pid_file "$svc")" "$(port_file "$svc")"
}

start_services() {
  local svc rc=0 launched=()
  for svc in "$@"; do
    if ready "$svc"; then
      if our_pid "$svc" >/dev/null; then
        line "$svc" "already running on $(endpoint "$svc")"
      else
        line "$svc" "reusing what answers on $(endpoint "$svc") (not started by stack.sh)"
      fi
      continue
    fi
    # Launch everything first and wait afterwards: the JVMs start in parallel.
    local t0
    t0="$(now_ms)"
    if launch "$svc"; then launched+=("$svc=$t0"); else rc=1; fi
  done
  if ((${#launched[@]})); then wait_ready "${launched[@]}" || rc=1; fi
  return "$rc"
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

usage() {
  cat <<EOF
Usage: scripts/stack.sh <command> [args]

Runs Kafka $KAFKA_VERSION (KRaft), Apicurio Registry $REGISTRY_VERSION and Redis for fairflag, without Docker.
State, downloads and logs live in .stack/ at the repository root (state and logs elsewhere with
FAIRFLAG_STACK_STATE).

Commands:
  up                     start whatever is not already answering, wait until all three are ready
  down [--keep-data]     stop all three; wipes Kafka's data (next up = fresh cluster) unless
                         --keep-data; the download cache is always kept
  status                 one line per service; exit 0 only if all three answer
  env                    print export lines: eval "\$(scripts/stack.sh env)"
  logs <service> [-f]    last lines of a service's log (-f to follow; LINES=n for more)
  start <service>        start one service (kafka | registry | redis)
  stop <service>         stop one service, keeping its data
  restart <service>      stop then start one service, keeping its data
  redis-cluster up|down|env
                         a 3-master Redis Cluster on loopback (for scale-out); env prints
                         FAIRFLAG_REDIS_CLUSTER_NODES
  --help                 this text

Environment:
  FAIRFLAG_STACK_KAFKA_PORT             Kafka client listener     (default 29092)
  FAIRFLAG_STACK_KAFKA_CONTROLLER_PORT  KRaft controller listener (default 29093)
  FAIRFLAG_STACK_REGISTRY_PORT          registry HTTP port        (default 28081)
  FAIRFLAG_STACK_REDIS_PORT             Redis port                (default 26379)
  FAIRFLAG_STACK_CLUSTER_PORTS          Redis Cluster master ports (default "27001 27002 27003")
  FAIRFLAG_REGISTRY_JAVA_HOME           JDK >= 21 for the registry (default: found under /usr/lib/jvm)
  FAIRFLAG_STACK_STATE                  another instance: its data, logs and pid files in this
                                        directory (default .stack/); downloads stay shared in .stack/
  FAIRFLAG_STACK_DURABLE=1              Redis keeps an append-only file and the registry an H2 file,
                                        so stopping and starting a service loses nothing
  FAIRFLAG_STACK_{KAFKA,REGISTRY,REDIS}_TIMEOUT  readiness timeouts in seconds (90, 120, 15)
EOF
}

cmd_up() {
  check_tools
  # Fail before starting anything if the registry has no JDK to run on.
  ready registry || our_pid registry >/dev/null || registry_java >/dev/null
  start_services "${SERVICES[@]}" || die "the stack did not come up (logs in $LOGS)"
}

cmd_down() {
  local keep=0
  case "${1:-}" in
    --keep-data) keep=1 ;;
    "") ;;
    *) die "down: unknown option '$1'" ;;
  esac
  local svc
  for svc in "${SERVICES[@]}"; do stop_service "$svc"; done
  # the scale-out cluster too, if one runs: `down` leaves nothing behind
  if [[ -d "$CLUSTER_HOME" ]] || cluster_ok; then cmd_redis_cluster down; fi
  if ((keep == 0)); then
    # Data only: libs/ and the unpacked registry stay as the download cache.
    rm -rf "$KAFKA_STATE/data" "$REDIS_HOME" "$REGISTRY_STATE"
    say "data wiped (download cache kept in $STACK)"
  fi
}

cmd_status() {
  local svc pid rc=0 state
  for svc in "${SERVICES[@]}"; do
    pid="$(our_pid "$svc" || true)"
    if ready "$svc"; then
      state="up      $(endpoint "$svc")"
      if [[ -n "$pid" ]]; then state+="  pid $pid"; else state+="  (not started by stack.sh)"; fi
    elif [[ -n "$pid" ]]; then
      state="starting/unhealthy  pid $pid  (scripts/stack.sh logs $svc)"
      rc=1
    elif pid="$(live_pid "$svc")"; then
      state="down on port $(service_port "$svc"); stack.sh's $svc runs on port $(cat "$(port_file "$svc")" 2>/dev/null || echo '?') (pid $pid)"
      rc=1
    else
      state="down"
      rc=1
    fi
    line "$svc" "$state"
  done
  return "$rc"
}

cmd_env() {
  say "export FAIRFLAG_KAFKA_BROKERS=$(endpoint kafka)"
  say "export FAIRFLAG_REGISTRY_URL=$(endpoint registry)"
  say "export FAIRFLAG_REDIS_URL=$(endpoint redis)"
  # nothing else produces on the local stack: fairflag registers the input subjects too
  say "export FAIRFLAG__registry__registerInputSubjects=true"
}

cmd_logs() {
  valid_service "${1:-}"
  local f
  f="$(log_file "$1")"
  [[ -f "$f" ]] || die "no log yet for $1 ($f)"
  if [[ "${2:-}" == -f ]]; then
    exec tail -n "${LINES:-100}" -F "$f"
  fi
  tail -n "${LINES:-100}" "$f"
}

# ---------------------------------------------------------------------------------------------
# Redis Cluster (for scale-out): three masters on loopback, joined with redis-cli --cluster create
# ---------------------------------------------------------------------------------------------

CLUSTER_PORTS=(${FAIRFLAG_STACK_CLUSTER_PORTS:-27001 27002 27003})
CLUSTER_HOME="$STATE/redis-cluster"

cluster_nodes() {
  local p out=()
  for p in "${CLUSTER_PORTS[@]}"; do out+=("$HOST:$p"); done
  (IFS=,; echo "${out[*]}")
}

cluster_ok() { [[ "$(timeout 2 redis-cli -h "$HOST" -p "${CLUSTER_PORTS[0]}" cluster info 2>/dev/null)" == *cluster_state:ok* ]]; }

cmd_redis_cluster() {
  local action="${1:-}" p
  case "$action" in
    up)
      check_tools
      if cluster_ok; then
        line redis-cluster "already running on $(cluster_nodes)"
        return 0
      fi
      local t0
      t0="$(now_ms)"
      for p in "${CLUSTER_PORTS[@]}"; do
        mkdir -p "$CLUSTER_HOME/$p"
        rm -f "$CLUSTER_HOME/$p/nodes.conf"
        redis-server --bind "$HOST" --port "$p" --cluster-enabled yes --cluster-config-file "$CLUSTER_HOME/$p/nodes.conf" \
          --save "" --appendonly no --dir "$CLUSTER_HOME/$p" --daemonize yes \
          --pidfile "$RUN/redis-cluster-$p.pid" --logfile "$LOGS/redis-cluster-$p.log" </dev/null 9>&- ||
          die "redis-server (cluster node $p) did not start; see $LOGS/redis-cluster-$p.log"
      done
      for p in "${CLUSTER_PORTS[@]}"; do
        local i=0
        until [[ "$(redis-cli -h "$HOST" -p "$p" ping 2>/dev/null)" == PONG ]]; do
          ((i++ > 100)) && die "cluster node $p did not answer"
          sleep 0.05
        done
      done
      local nodes=()
      for p in "${CLUSTER_PORTS[@]}"; do nodes+=("$HOST:$p"); done
      redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$LOGS/redis-cluster-create.log" 2>&1 ||
        die "redis-cli --cluster create failed; see $LOGS/redis-cluster-create.log"
      local i=0
      until cluster_ok; do
        ((i++ > 200)) && die "the cluster did not reach cluster_state:ok"
        sleep 0.05
      done
      line redis-cluster "ready on $(cluster_nodes) ($(since "$t0") s)"
      ;;
    down)
      for p in "${CLUSTER_PORTS[@]}"; do
        redis-cli -h "$HOST" -p "$p" shutdown nosave >/dev/null 2>&1 || true
        rm -f "$RUN/redis-cluster-$p.pid"
      done
      rm -rf "$CLUSTER_HOME"
      line redis-cluster "stopped"
      ;;
    env) say "export FAIRFLAG_REDIS_CLUSTER_NODES=$(cluster_nodes)" ;;
    *) die "redis-cluster: expected up, down or env" ;;
  esac
}

cmd_start() {
  valid_service "${1:-}"
  check_tools
  start_services "$1"
}

cmd_stop() {
  valid_service "${1:-}"
  stop_service "$1"
}

cmd_restart() {
  valid_service "${1:-}"
  check_tools
  stop_service "$1"
  start_services "$1"
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    -h | --help | help)
      usage
      return 0
      ;;
    env)
      cmd_env
      return 0
      ;;
    up | down | status | logs | start | stop | restart) ;;
    redis-cluster)
      cmd=redis_cluster
      [[ "${1:-}" == env ]] && {
        cmd_redis_cluster env
        return 0
      }
      ;;
    "")
      usage >&2
      return 2
      ;;
    *)
      err "unknown command '$cmd'"
      usage >&2
      return 2
      ;;
  esac
  mkdir -p "$STACK" "$STATE" "$RUN" "$LOGS"
  # One stack command at a time (e.g. two test runs calling `up` together), except read-only ones.
  if [[ "$cmd" != status && "$cmd" != logs ]] && command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE/.lock"
    flock 9
  fi
  "cmd_$cmd" "$@"
}

main "$@"
