#!/usr/bin/env bash
# The postgres issuer against a real server (a throwaway cluster from Tests/Postgres/pg-cluster.sh):
#  1. 1,000 roles, each with a SCRAM password, a grant and VALID UNTIL: `tokenctl apply` against one psql session
#     running the equivalent SQL with the verifiers computed beforehand;
#  2. inventory of a server with 100,000 roles: `tokenctl plan --refresh` (one catalog query), and the query alone.
# Needs postgresql-15 and python3. Run as root or as a user that may run initdb.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product tokenctl >/dev/null
tokenctl=$PWD/.build/release/tokenctl
roles=${ROLES:-1000}
work=$(mktemp -d /tmp/tokenctl-pgbench-XXXXXX)
chmod 755 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=$(Tests/Postgres/pg-cluster.sh start "$work/cluster" "$port")
trap 'Tests/Postgres/pg-cluster.sh stop "$work/cluster"; rm -rf "$work"' EXIT
# The benchmark measures the work, not the statement log the test clusters keep.
psql "$url" -qc "ALTER SYSTEM SET log_statement = 'none'" -c "SELECT pg_reload_conf()" >/dev/null
psql "$url" -qc "CREATE ROLE bench_read NOLOGIN"

echo "== $roles roles: one psql session (verifiers computed beforehand) vs tokenctl apply"
python3 - "$work/roles.sql" "$roles" <<'PY'
import base64, hashlib, hmac, os, sys
path, count = sys.argv[1], int(sys.argv[2])
def verifier(password):
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 4096)
    client = hmac.new(salted, b"Client Key", "sha256").digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256$4096:{b64(salt)}${b64(hashlib.sha256(client).digest())}:{b64(server)}"
with open(path, "w") as out:
    for i in range(count):
        out.write(f"CREATE ROLE psql_bench_{i} LOGIN PASSWORD '{verifier(os.urandom(24).hex())}' VALID UNTIL '2030-01-01' IN ROLE bench_read;\n")
        out.write(f"COMMENT ON ROLE psql_bench_{i} IS 'tokenctl:issuer=psql;token=bench/t{i};version=1;intent=-;';\n")
PY
start=$(date +%s.%N)
psql "$url" -q -f "$work/roles.sql"
psql_seconds=$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")
echo "psql: $psql_seconds s"
psql "$url" -qtAc "SELECT 'DROP ROLE ' || rolname || ';' FROM pg_roles WHERE rolname LIKE 'psql\_bench\_%'" | psql "$url" -q

mkdir -p "$work/manifests"
python3 - "$work/manifests/tokens.yaml" "$roles" <<'PY'
import sys
path, count = sys.argv[1], int(sys.argv[2])
with open(path, "w") as out:
    out.write("apiVersion: tokenctl/v1\nkind: Issuer\nmetadata: {name: db}\nspec:\n  type: postgres\n"
              "  postgres: {url: env:PG_ADMIN_URL, roleTemplate: 'bench_{namespace}_{name}_v{version}', tls: {mode: disable}}\n")
    out.write("---\napiVersion: tokenctl/v1\nkind: Store\nmetadata: {name: envfile}\nspec: {type: dotenv, dotenv: {path: bench.env}}\n")
    for i in range(count):
        out.write(f"---\napiVersion: tokenctl/v1\nkind: Token\nmetadata: {{name: t{i}, namespace: bench, owner: team-bench}}\n"
                  f"spec: {{issuer: db, scopes: ['role:bench_read'], secretFormat: password, lifespan: 30d, "
                  f"deliverTo: [{{store: envfile, key: bench/t{i}}}]}}\n")
PY
start=$(date +%s.%N)
PG_ADMIN_URL=$url "$tokenctl" apply -f "$work/manifests" --auto-approve >"$work/apply.log"
apply_seconds=$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")
tail -1 "$work/apply.log"
python3 -c "print(f'tokenctl apply: $apply_seconds s = {$apply_seconds / $psql_seconds:.2f}x the psql session')"
echo "roles made by tokenctl: $(psql "$url" -tAc "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'bench\_bench\_%'")"

echo "== inventory with 100,000 roles on the server"
psql "$url" -qc "DO \$\$ BEGIN FOR i IN 1..$((100000 - roles)) LOOP EXECUTE format('CREATE ROLE other_%s NOLOGIN', i); END LOOP; END \$\$"
echo "roles on the server: $(psql "$url" -tAc "SELECT count(*) FROM pg_roles")"
for run in 1 2 3; do
  start=$(date +%s.%N)
  PG_ADMIN_URL=$url "$tokenctl" plan -f "$work/manifests" --refresh >"$work/plan.log"
  python3 -c "import time; print(f'plan --refresh (decode $roles specs, load state, one catalog query, plan): {time.time() - $start:.2f} s')"
done
tail -1 "$work/plan.log"
psql "$url" -qAt -c '\timing on' -c "SELECT count(*) FROM (SELECT r.rolname, r.rolcanlogin, r.rolvaliduntil, d.description FROM pg_roles r
  LEFT JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
  WHERE d.description LIKE 'tokenctl:issuer=db;%' OR (r.rolname LIKE 'bench\_%\_%\_v%' AND (d.description IS NULL OR d.description NOT LIKE 'tokenctl:%'))) q" | sed 's/^/catalog query: /'
