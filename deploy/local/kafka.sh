#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft) for development and tests.
#
#   deploy/local/kafka.sh start    fetch jars if needed, format storage once, start, wait until it answers
#   deploy/local/kafka.sh stop     stop it (data is kept)
#   deploy/local/kafka.sh status   exit 0 and say so when it runs
#   deploy/local/kafka.sh reset    stop it and delete its data
#   deploy/local/kafka.sh jars     only resolve the jars from Maven Central
#   deploy/local/kafka.sh start-secured   start with KAFKA_SECURED=1 (below)
#
# The broker version is pinned in deploy/local/pom.xml (kafka.version). Jars are
# cached in .cache/kafka-jars, data in .cache/kafka (both git-ignored); set
# LEADFLOW_KAFKA_HOME and KAFKA_PORT to run a second, separate broker (the tests do).
# KAFKA_SECURED=1: clients must use SASL_SSL, SCRAM-SHA-512 users, ACLs per service
# (deploy/local/acls.py); CA, certificates and passwords in $LEADFLOW_KAFKA_HOME/secured.
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
# Secured mode: one SASL_SSL listener for clients (and the broker itself), a CA and
# a broker certificate made here, a SCRAM-SHA-512 user per service plus `admin`
# (the broker's own, a super user; tests use it too), created when the storage is
# formatted, and the StandardAuthorizer with each service's ACLs from
# deploy/local/acls.py. The controller listener takes only `admin` (SASL PLAIN).
secured="${KAFKA_SECURED:-0}"
secrets="$home/secured"
python="${LEADFLOW_PYTHON:-$root/.venv/bin/python}"
users=(admin leadflow-marketing leadflow-sales leadflow-orders leadflow-webhooks)

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

mode() { if [[ "$secured" == 1 ]]; then echo secured; else echo plain; fi; }

# The mode the storage was formatted in (data formatted before modes existed: plain).
formatted_mode() {
  if [[ ! -f "$data/meta.properties" ]]; then return; fi
  cat "$home/mode" 2>/dev/null || echo plain
}

password() { cat "$secrets/passwords/$1"; }

# Passwords, once per home; a CA and a broker certificate for 127.0.0.1 and localhost.
credentials() {
  (
    umask 077
    mkdir -p "$secrets/passwords"
    for user in "${users[@]}"; do
      [[ -s "$secrets/passwords/$user" ]] || openssl rand -hex 24 >"$secrets/passwords/$user"
    done
    cd "$secrets"
    if [[ -s broker.pem && -s ca.crt ]]; then exit 0; fi
    say "making a CA and a broker certificate in $secrets"
    openssl req -x509 -newkey rsa:2048 -noenc -days 3650 -keyout ca.key -out ca.crt \
      -subj "/CN=Leadflow local broker CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -noenc -keyout broker.key -out broker.csr -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:$host,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth,clientAuth" \
      "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" >broker.ext
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
      -extfile broker.ext -out broker.crt 2>/dev/null
    # Kafka's PEM key store: the PKCS#8 key, then the certificate chain.
    cat broker.key broker.crt ca.crt >broker.pem
    rm -f broker.csr broker.ext
  )
}

plain_listeners() {
  echo "listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port"
  echo "advertised.listeners=PLAINTEXT://$host:$port"
  echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  echo "inter.broker.listener.name=PLAINTEXT"
}

secured_listeners() {
  local admin scram plain
  admin="$(password admin)"
  scram="org.apache.kafka.common.security.scram.ScramLoginModule required"
  plain="org.apache.kafka.common.security.plain.PlainLoginModule required"
  # No PLAINTEXT listener: clients, and the broker itself, use SASL_SSL.
  echo "listeners=SASL_SSL://$host:$port,CONTROLLER://$host:$controller_port"
  echo "advertised.listeners=SASL_SSL://$host:$port"
  echo "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
  echo "inter.broker.listener.name=SASL_SSL"
  echo "sasl.enabled.mechanisms=SCRAM-SHA-512"
  echo "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512"
  echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram username=\"admin\" password=\"$admin\";"
  echo "ssl.keystore.type=PEM"
  echo "ssl.keystore.location=$secrets/broker.pem"
  echo "ssl.truststore.type=PEM"
  echo "ssl.truststore.location=$secrets/ca.crt"
  echo "ssl.client.auth=none"
  # The controller listener (loopback) knows one user, admin: no anonymous super user.
  echo "sasl.mechanism.controller.protocol=PLAIN"
  echo "listener.name.controller.sasl.enabled.mechanisms=PLAIN"
  echo "listener.name.controller.plain.sasl.jaas.config=$plain username=\"admin\" password=\"$admin\" user_admin=\"$admin\";"
  echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
  echo "super.users=User:admin"
  echo "allow.everyone.if.no.acl.found=false"
}

format() {
  local config="$home/server.properties"
  local was
  was="$(formatted_mode)"
  if [[ -n "$was" && "$was" != "$(mode)" ]]; then
    say "the data in $data is formatted for the $was mode; \`kafka.sh reset\` first"
    exit 1
  fi
  if [[ "$secured" == 1 ]]; then credentials; fi
  (
    umask 077 # the secured config holds the admin password
    {
      cat "$here/server.properties"
      echo "log.dirs=$data"
      echo "controller.quorum.voters=1@$host:$controller_port"
      if [[ "$secured" == 1 ]]; then secured_listeners; else plain_listeners; fi
    } >"$config"
  )
  if [[ -n "$was" ]]; then return; fi
  say "formatting storage in $data ($(mode))"
  mkdir -p "$data"
  local cluster_id
  local scram=()
  if [[ "$secured" == 1 ]]; then
    for user in "${users[@]}"; do
      scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(password "$user")]")
    done
  fi
  # shellcheck disable=SC2046
  cluster_id="$(java $(java_opts) -cp "$libs/*" kafka.tools.StorageTool random-uuid)"
  # shellcheck disable=SC2046
  java $(java_opts) -cp "$libs/*" kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$config" "${scram[@]}" >"$logs/format.log"
  mode >"$home/mode"
}

# Secured mode: the service users' ACLs, exactly as deploy/local/acls.py derives them.
acls() {
  if [[ "$secured" != 1 ]]; then return; fi
  if [[ ! -x "$python" ]]; then
    say "no $python for deploy/local/acls.py (\`make venv\`, or set LEADFLOW_PYTHON)"
    exit 1
  fi
  "$python" "$here/acls.py" apply --bootstrap "$host:$port" --cafile "$secrets/ca.crt" \
    --user admin --password-file "$secrets/passwords/admin"
}

start() {
  if alive; then
    local running
    running="$(formatted_mode)"
    if [[ "$running" != "$(mode)" ]]; then
      say "already running on $host:$port in the ${running:-plain} mode; \`kafka.sh stop\` first"
      exit 1
    fi
    say "already running (pid $(pid)) on $host:$port"
    wait_ready
    acls
    return
  fi
  if answers; then
    say "something else answers on $host:$port; not starting a second broker"
    exit 1
  fi
  jars
  mkdir -p "$logs"
  format
  say "starting Apache Kafka $version on $host:$port ($(mode))"
  # shellcheck disable=SC2046
  # Its own session: a Ctrl-C meant for `make up` must not hit the broker first.
  setsid nohup java $(java_opts) -cp "$libs/*" kafka.Kafka "$home/server.properties" \
    >"$logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready
  acls
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
    say "running (pid $(pid)) on $host:$port, Apache Kafka $version, $(formatted_mode) mode"
  else
    say "not running"
    return 1
  fi
}

reset() {
  stop
  rm -rf "$data" "$logs" "$home/mode"
  say "data removed"
}

case "${1:-}" in
  start | stop | status | reset | jars) "$1" ;;
  start-secured)
    secured=1
    start
    ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
