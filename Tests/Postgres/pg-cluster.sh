#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster on a loopback port, for tests and CI.
#
#   pg-cluster.sh start DIR PORT   # initdb + start; prints the admin URL (scram-sha-256 over TCP)
#   pg-cluster.sh stop DIR         # fast shutdown, then removes DIR
#   PG_CLUSTER_TLS=1 pg-cluster.sh start …   # also serve TLS, with a throwaway CA in DIR/ca.pem
#
# The server refuses to run as root: as root, the cluster belongs to the `postgres` user.
# Every statement is logged (log_statement = all) to DIR/server.log, so tests can search it for secrets.
set -euo pipefail
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$bin/initdb" ] || { echo "pg-cluster: no PostgreSQL server binaries (install postgresql-15)" >&2; exit 1; }
command=${1:?usage: pg-cluster.sh start DIR PORT | stop DIR}
dir=${2:?usage: pg-cluster.sh start DIR PORT | stop DIR}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$command" in
start)
  port=${3:?usage: pg-cluster.sh start DIR PORT}
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20)
  printf '%s\n' "$password" > "$dir/.pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir/.pwfile"
  as_owner "$bin/initdb" -D "$dir/data" -U tokenctl_admin --pwfile="$dir/.pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$dir/.pwfile"
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
log_statement = 'all'
log_connections = on
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  if [ "${PG_CLUSTER_TLS:-}" = 1 ]; then
    # TLS with a throwaway CA: DIR/ca.pem verifies the server's certificate for 127.0.0.1 and localhost.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tokenctl test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/data/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
      -extfile "$dir/san.ext" -out "$dir/data/server.crt" 2>/dev/null
    chmod 600 "$dir/data/server.key"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/data/server.key" "$dir/data/server.crt"
    chmod 644 "$dir/ca.pem"
    printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >>"$dir/data/postgresql.conf"
  fi
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  echo "postgres://tokenctl_admin:$password@127.0.0.1:$port/postgres?sslmode=disable"
  ;;
stop)
  if [ -d "$dir/data" ]; then as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg-cluster.sh start DIR PORT | stop DIR" >&2
  exit 2
  ;;
esac
