#!/usr/bin/env bash
# Single-node OpenSearch 2.19.x with the Job Scheduler, Anomaly Detection, Notifications (core and
# plugin) and Alerting plugins, assembled from Maven Central alone (see docs/opensearch-local.md).
#
# Usage: scripts/opensearch-local.sh fetch|install|up|down|status|reset|logs|url
#
# Everything it downloads is cached outside the repository, so a second start downloads nothing:
#   zips and jars  ${SPIKEWATCH_CACHE:-~/.cache/spikewatch}/opensearch/<version>  (and ~/.m2)
#   install, data  ${OS_BASE:-/var/tmp/spikewatch-opensearch}   (world-traversable: the node runs
#                  as an unprivileged user when this script is run as root)
set -euo pipefail

# The versions, in one place. Core, module jars and plugin zips must share one patch version.
# shellcheck source=scripts/opensearch-versions.env
. "$(dirname "$0")/opensearch-versions.env"
OS_VERSION="${OS_VERSION:-$SPIKEWATCH_OS_VERSION}"
PLUGIN_VERSION="${OS_PLUGIN_VERSION:-${OS_VERSION}.0}"

CACHE_ROOT="${SPIKEWATCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spikewatch}"
OS_CACHE="${OS_CACHE:-${CACHE_ROOT}/opensearch/${OS_VERSION}}"
OS_BASE="${OS_BASE:-/var/tmp/spikewatch-opensearch}"
OS_HOME="${OS_BASE}/opensearch-${OS_VERSION}"
OS_DATA="${OS_BASE}/data"
OS_LOGS="${OS_BASE}/logs"
OS_RUN="${OS_BASE}/run"
OS_PIDFILE="${OS_RUN}/opensearch.pid"
OS_PORT="${OS_PORT:-9200}"
OS_TRANSPORT_PORT="${OS_TRANSPORT_PORT:-9300}"
OS_HEAP="${OS_HEAP:-2g}"
OS_USER="${OS_USER:-opensearch}"
OS_START_TIMEOUT="${OS_START_TIMEOUT:-240}"
OS_MODULES="lang-painless lang-mustache reindex analysis-common mapper-extras"
# Plugin zips in install order (extended plugins first). Only job-scheduler is published to Maven
# Central: anomaly-detection, notifications and alerting publish their zips to the OpenSearch snapshot
# repository only (see docs/opensearch-local.md). They are tried, and installed when they resolve or
# when a directory of zips is given with OS_PLUGIN_ZIPS=/dir (files named <artifactId>-<version>.zip).
PLUGINS_REQUIRED="opensearch-job-scheduler"
PLUGINS_OPTIONAL="opensearch-anomaly-detection opensearch-notifications-core notifications alerting"
PLUGINS_IN_ORDER="$PLUGINS_REQUIRED $PLUGINS_OPTIONAL"
DEP=org.apache.maven.plugins:maven-dependency-plugin:3.6.1
MVN=(mvn -B -ntp -q)
URL="http://127.0.0.1:${OS_PORT}"

find_java17() {
  if [ -n "${OS_JAVA_HOME:-}" ]; then echo "$OS_JAVA_HOME"; return; fi
  for d in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/java-17-openjdk /usr/lib/jvm/java-21-openjdk-amd64; do
    [ -x "$d/bin/java" ] && { echo "$d"; return; }
  done
  [ -n "${JAVA_HOME:-}" ] && { echo "$JAVA_HOME"; return; }
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}
OS_JAVA_HOME="$(find_java17)"
export JAVA_HOME="$OS_JAVA_HOME" OPENSEARCH_JAVA_HOME="$OS_JAVA_HOME"

say() { printf 'opensearch-local: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# module name -> "artifactId|plugin class|extended.plugins"
module_row() {
  case "$1" in
    lang-painless)   echo "lang-painless|org.opensearch.painless.PainlessPlugin|" ;;
    lang-mustache)   echo "lang-mustache-client|org.opensearch.script.mustache.MustachePlugin|" ;;
    reindex)         echo "reindex-client|org.opensearch.index.reindex.ReindexPlugin|" ;;
    analysis-common) echo "analysis-common|org.opensearch.analysis.common.CommonAnalysisPlugin|lang-painless" ;;
    mapper-extras)   echo "mapper-extras-client|org.opensearch.index.mapper.MapperExtrasPlugin|" ;;
    *) die "unknown module $1" ;;
  esac
}

module_policy() {
  case "$1" in
    lang-painless) printf 'grant {\n  permission java.lang.RuntimePermission "createClassLoader";\n  permission java.lang.RuntimePermission "getClassLoader";\n};\n' ;;
    lang-mustache) printf 'grant {\n  permission java.lang.RuntimePermission "accessDeclaredMembers";\n  permission java.lang.reflect.ReflectPermission "suppressAccessChecks";\n};\n' ;;
    reindex)       printf 'grant {\n  permission java.net.SocketPermission "*", "connect";\n  permission java.net.NetPermission "getProxySelector";\n};\n' ;;
    *) : ;;
  esac
}

mvn_copy() { # artifact outdir
  "${MVN[@]}" "$DEP:copy" -Dartifact="$1" -DoutputDirectory="$2"
}

fetch() {
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  mkdir -p "$OS_CACHE"
  local t0=$SECONDS
  if [ ! -f "$OS_CACHE/opensearch-${OS_VERSION}.zip" ]; then
    say "fetching integ-test-zip ${OS_VERSION} from Maven Central"
    mvn_copy "org.opensearch.distribution.integ-test-zip:opensearch:${OS_VERSION}:zip" "$OS_CACHE" \
      || die "integ-test-zip ${OS_VERSION} did not resolve (see docs/opensearch-local.md, fallbacks)"
  fi
  for a in $PLUGINS_REQUIRED; do
    if [ ! -f "$OS_CACHE/${a}-${PLUGIN_VERSION}.zip" ]; then
      say "fetching plugin ${a} ${PLUGIN_VERSION}"
      mvn_copy "org.opensearch.plugin:${a}:${PLUGIN_VERSION}:zip" "$OS_CACHE" \
        || die "plugin ${a} ${PLUGIN_VERSION} did not resolve"
    fi
  done
  for a in $PLUGINS_OPTIONAL; do
    local z="${a}-${PLUGIN_VERSION}.zip"
    if [ -n "${OS_PLUGIN_ZIPS:-}" ] && [ -f "$OS_PLUGIN_ZIPS/$z" ]; then cp "$OS_PLUGIN_ZIPS/$z" "$OS_CACHE/"; fi
    [ -f "$OS_CACHE/$z" ] || [ -f "$OS_CACHE/${z}.missing" ] && continue
    say "trying optional plugin ${a} ${PLUGIN_VERSION}"
    if ! mvn_copy "org.opensearch.plugin:${a}:${PLUGIN_VERSION}:zip" "$OS_CACHE" >/dev/null 2>&1; then
      say "optional plugin ${a} ${PLUGIN_VERSION} is not served by the Maven registry: skipped (OS_PLUGIN_ZIPS=/dir to supply it)"
      touch "$OS_CACHE/${z}.missing"
    fi
  done
  for m in $OS_MODULES; do fetch_module "$m"; done
  say "fetch done in $((SECONDS - t0))s (cache: $OS_CACHE)"
}

# fetch_module downloads a module jar and its runtime dependencies into the cache.
fetch_module() {
  local name="$1" row aid cls ext work out
  row="$(module_row "$name")"; IFS='|' read -r aid cls ext <<<"$row"
  work="$OS_CACHE/modules/$name"; out="$work/jars"
  [ -f "$work/.done" ] && return 0
  say "fetching module ${name} (${aid} ${OS_VERSION}) and its dependencies"
  rm -rf "$work"; mkdir -p "$out"
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
 <groupId>local.spikewatch</groupId><artifactId>module-${name}</artifactId><version>1</version><packaging>pom</packaging>
 <dependencies><dependency>
  <groupId>org.opensearch.plugin</groupId><artifactId>${aid}</artifactId><version>${OS_VERSION}</version>
  <exclusions>
   <exclusion><groupId>org.opensearch</groupId><artifactId>opensearch</artifactId></exclusion>
   <exclusion><groupId>org.opensearch</groupId><artifactId>opensearch-core</artifactId></exclusion>
   <exclusion><groupId>org.opensearch</groupId><artifactId>opensearch-common</artifactId></exclusion>
   <exclusion><groupId>org.apache.lucene</groupId><artifactId>*</artifactId></exclusion>
   <exclusion><groupId>org.apache.logging.log4j</groupId><artifactId>*</artifactId></exclusion>
  </exclusions>
 </dependency></dependencies></project>
POM
  "${MVN[@]}" -f "$work/pom.xml" "$DEP:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$out" \
    || die "module ${name} (${aid}:${OS_VERSION}) did not resolve"
  touch "$work/.done"
}

build_module() {   # assemble modules/<name>/ from the cached jars
  local name="$1" row aid cls ext dir j b
  row="$(module_row "$name")"; IFS='|' read -r aid cls ext <<<"$row"
  dir="$OS_HOME/modules/$name"
  [ -f "$dir/plugin-descriptor.properties" ] && return 0
  mkdir -p "$dir"
  cp "$OS_CACHE/modules/$name/jars/"*.jar "$dir/"
  # drop jars that lib/ or another module already has (jar hell otherwise)
  for j in "$dir"/*.jar; do
    b="$(basename "$j" | sed -E 's/-[0-9][0-9A-Za-z.]*(-[A-Za-z0-9]+)?\.jar$//')"
    [ "$b" = "$aid" ] && continue
    if compgen -G "$OS_HOME/lib/${b}-[0-9]*.jar" >/dev/null; then rm -f "$j"; continue; fi
    if [ "$name" != lang-painless ] && compgen -G "$OS_HOME/modules/lang-painless/${b}-[0-9]*.jar" >/dev/null && [ "$ext" = lang-painless ]; then rm -f "$j"; fi
  done
  # no grep -q here: with pipefail an early grep exit can SIGPIPE unzip
  unzip -Z1 "$dir/${aid}-${OS_VERSION}.jar" | grep -x "${cls//.//}.class" >/dev/null \
    || die "class $cls not in ${aid}-${OS_VERSION}.jar"
  cat >"$dir/plugin-descriptor.properties" <<DESC
description=${name} module assembled from Maven Central jars
version=${OS_VERSION}
name=${name}
classname=${cls}
java.version=11
opensearch.version=${OS_VERSION}
extended.plugins=${ext}
has.native.controller=false
DESC
  module_policy "$name" >"$dir/plugin-security.policy"
  [ -s "$dir/plugin-security.policy" ] || rm -f "$dir/plugin-security.policy"
}

write_config() {
  mkdir -p "$OS_DATA" "$OS_LOGS" "$OS_RUN" "$OS_HOME/config/jvm.options.d"
  cat >"$OS_HOME/config/opensearch.yml" <<YML
# written by scripts/opensearch-local.sh: a single test node, fast settings for tests
cluster.name: spikewatch-local
node.name: node-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: ${OS_PORT}
transport.port: ${OS_TRANSPORT_PORT}
path.data: ${OS_DATA}
path.logs: ${OS_LOGS}
cluster.default_number_of_replicas: 0
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
YML
  if [ -d "$OS_HOME/plugins/opensearch-anomaly-detection" ]; then
    printf 'plugins.anomaly_detection.batch_task_piece_interval_seconds: 1\nplugins.anomaly_detection.max_multi_entity_anomaly_detectors: 20\n' \
      >>"$OS_HOME/config/opensearch.yml"
  fi
  printf -- '-Xms%s\n-Xmx%s\n' "$OS_HEAP" "$OS_HEAP" >"$OS_HOME/config/jvm.options.d/heap.options"
}

install() {
  if [ -x "$OS_HOME/bin/opensearch" ] && [ -f "$OS_HOME/.spikewatch-installed" ]; then write_config; return 0; fi
  fetch
  local t0=$SECONDS
  say "installing into $OS_HOME"
  rm -rf "$OS_HOME"; mkdir -p "$OS_BASE"; chmod 755 "$OS_BASE"
  local tmp; tmp="$(mktemp -d "${OS_BASE}/unpack.XXXXXX")"
  unzip -q "$OS_CACHE/opensearch-${OS_VERSION}.zip" -d "$tmp"
  mv "$tmp/opensearch-${OS_VERSION}" "$OS_HOME"; rmdir "$tmp"
  for m in $OS_MODULES; do build_module "$m"; done
  for a in $PLUGINS_IN_ORDER; do            # extended plugins first
    [ -f "${OS_CACHE}/${a}-${PLUGIN_VERSION}.zip" ] || continue
    say "installing plugin $a"
    "$OS_HOME/bin/opensearch-plugin" install --batch "file://${OS_CACHE}/${a}-${PLUGIN_VERSION}.zip" >/dev/null \
      || die "plugin install $a failed"
  done
  write_config
  touch "$OS_HOME/.spikewatch-installed"
  say "install done in $((SECONDS - t0))s"
}

pid_alive() { [ -s "$OS_PIDFILE" ] && kill -0 "$(cat "$OS_PIDFILE")" 2>/dev/null; }

log_tail() { tail -n "${1:-60}" "$OS_LOGS"/spikewatch-local.log 2>/dev/null || tail -n "${1:-60}" "$OS_LOGS"/*.log 2>/dev/null || true; }

up() {
  if pid_alive; then say "already running (pid $(cat "$OS_PIDFILE")) at $URL"; return 0; fi
  if curl -fsS "$URL" >/dev/null 2>&1; then die "port ${OS_PORT} is taken by another process"; fi
  install
  local run=()
  if [ "$(id -u)" = 0 ]; then                # OpenSearch refuses to run as root
    id -u "$OS_USER" >/dev/null 2>&1 ||
      useradd --system --no-create-home --home-dir "$OS_BASE" --shell /usr/sbin/nologin "$OS_USER"
    chown -R "$OS_USER:" "$OS_HOME" "$OS_DATA" "$OS_LOGS" "$OS_RUN"
    run=(runuser -u "$OS_USER" --)
  fi
  say "starting OpenSearch ${OS_VERSION} on $URL (heap ${OS_HEAP}, java $OS_JAVA_HOME)"
  local t0=$SECONDS
  "${run[@]}" env JAVA_HOME="$OS_JAVA_HOME" OPENSEARCH_JAVA_HOME="$OS_JAVA_HOME" \
      OPENSEARCH_PATH_CONF="$OS_HOME/config" "$OS_HOME/bin/opensearch" -d -p "$OS_PIDFILE" \
      >"$OS_LOGS/stdout.log" 2>&1 || { cat "$OS_LOGS/stdout.log" >&2; log_tail; die "OpenSearch did not start"; }
  wait_ready
  say "green after $((SECONDS - t0))s"
}

wait_ready() {
  local deadline=$((SECONDS + OS_START_TIMEOUT)) n=0 started=$SECONDS
  until curl -fsS "$URL/_cluster/health?wait_for_status=green&timeout=2s" >/dev/null 2>&1; do
    if [ -s "$OS_PIDFILE" ] && ! pid_alive; then log_tail 100 >&2; die "OpenSearch exited during startup (log: $OS_LOGS)"; fi
    if [ ! -s "$OS_PIDFILE" ] && [ $((SECONDS - started)) -gt 30 ]; then
      cat "$OS_LOGS/stdout.log" >&2 2>/dev/null; log_tail 100 >&2; die "OpenSearch wrote no pid file within 30s"
    fi
    [ "$SECONDS" -lt "$deadline" ] || { log_tail 100 >&2; die "not green after ${OS_START_TIMEOUT}s (log: $OS_LOGS)"; }
    n=$((n + 1)); [ $((n % 5)) -eq 0 ] && say "waiting for green health ($((SECONDS - started))s) ..."
    sleep 2
  done
}

down() {
  pid_alive || { rm -f "$OS_PIDFILE"; say "not running"; return 0; }
  local pid; pid="$(cat "$OS_PIDFILE")"
  say "stopping pid $pid"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  rm -f "$OS_PIDFILE"
}

status() {
  if ! pid_alive; then echo "stopped"; return 3; fi
  echo "running (pid $(cat "$OS_PIDFILE")) at $URL"
  curl -fsS "$URL/_cluster/health?filter_path=status,number_of_nodes" && echo
  curl -fsS "$URL/_cat/plugins?h=component,version"
  echo "rss: $(ps -o rss= -p "$(cat "$OS_PIDFILE")" | awk '{printf "%.0f MiB", $1/1024}')"
}

case "${1:-up}" in
  fetch) fetch ;;
  install) install ;;
  up|start) up ;;
  down|stop) down ;;
  status) status ;;
  reset) down; rm -rf "$OS_DATA" "$OS_LOGS" ;;
  logs) log_tail 200 ;;
  url) echo "$URL" ;;
  *) die "usage: $0 fetch|install|up|down|status|reset|logs|url" ;;
esac
