#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft) for development and tests.
#
#   deploy/local/kafka.sh start    fetch jars if needed, format storage once, start, wait until it answers
#   deploy/local/kafka.sh stop     stop it (data is kept)
#   deploy/local/kafka.sh status   exit 0 and say so when it runs
#   deploy/local/kafka.sh reset    stop it and delete its data
#   deploy/local/kafka.sh jars     only resolve the jars from Maven Central
#
# The broker version is pinned in deploy/local/pom.xml (kafka.version). Jars are
# cached in .cache/kafka-jars, data in .cache/kafka (both git-ignored); set
# LEADFLOW_KAFKA_HOME and KAFKA_PORT to run a second, separate broker (the tests do).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
home="${LEADFLOW_KAFKA_HOME:-$root/.cache/kafka}"
libs="$root/.cache/kafka-jars/$version"
data="$home/data"
logs="$home/logs"
pidfile="$home/broker.pid"
host=127.0.0.1
port="${KAFKA_PORT:-9092}"
controller_port=$((port + 1))
start_timeout="${KAFKA_START_TIMEOUT:-90}"

say() { printf 'kafka: %s\n' "$*" >&2; }

jars() {
  if [[ -f "$libs/.complete" ]]; then return; fi
  say "resolving Apache Kafka $version from Maven Central"
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
}

pid() { [[ -f "$pidfile" ]] && cat "$pidfile"; }

alive() {
  local p
  p="$(pid)" || return 1
  [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null
}

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

java_opts() {
  echo "-Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true" \
    "-Dkafka.logs.dir=$logs -Dlog4j2.configurationFile=$here/log4j2.yaml"
}

format() {
  local config="$home/server.properties"
  {
    cat "$here/server.properties"
    echo "log.dirs=$data"
    echo "listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port"
    echo "advertised.listeners=PLAINTEXT://$host:$port"
    echo "controller.quorum.voters=1@$host:$controller_port"
  } >"$config"
  if [[ -f "$data/meta.properties" ]]; then return; fi
  say "formatting storage in $data"
  mkdir -p "$data"
  local cluster_id
  # shellcheck disable=SC2046
  cluster_id="$(java $(java_opts) -cp "$libs/*" kafka.tools.StorageTool random-uuid)"
  # shellcheck disable=SC2046
  java $(java_opts) -cp "$libs/*" kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$config" >"$logs/format.log"
}

start() {
  if alive; then
    say "already running (pid $(pid)) on $host:$port"
    wait_ready
    return
  fi
  if answers; then
    say "something else answers on $host:$port; not starting a second broker"
    exit 1
  fi
  jars
  mkdir -p "$logs"
  format
  say "starting Apache Kafka $version on $host:$port"
  # shellcheck disable=SC2046
  # Its own session: a Ctrl-C meant for `make up` must not hit the broker first.
  setsid nohup java $(java_opts) -cp "$libs/*" kafka.Kafka "$home/server.properties" \
    >"$logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + start_timeout))
  until answers && grep -q "Kafka Server started" "$logs/server.log" 2>/dev/null; do
    if ! alive; then
      say "broker exited; last lines of $logs:"
      tail -n 30 "$logs/stdout.log" "$logs/server.log" >&2 2>/dev/null || true
      exit 1
    fi
    if ((SECONDS > deadline)); then
      say "broker did not answer within ${start_timeout}s (see $logs/server.log)"
      exit 1
    fi
    sleep 0.5
  done
  say "ready on $host:$port"
}

stop() {
  if ! alive; then
    say "not running"
    rm -f "$pidfile"
    return
  fi
  local p
  p="$(pid)"
  say "stopping (pid $p)"
  kill "$p"
  for _ in $(seq 1 60); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$p" 2>/dev/null; then
    say "did not stop in 30s; killing"
    kill -9 "$p" || true
  fi
  rm -f "$pidfile"
}

status() {
  if alive && answers; then
    say "running (pid $(pid)) on $host:$port, Apache Kafka $version"
  else
    say "not running"
    return 1
  fi
}

reset() {
  stop
  rm -rf "$data" "$logs"
  say "data removed"
}

case "${1:-}" in
  start | stop | status | reset | jars) "$1" ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
