# Sourced by the examples' run.sh walkthroughs: starts `mandate serve` on the example's policy.polar
# and facts.jsonl with a private data directory on a free port, and defines `call`.
# Before sourcing, set `here` (the example's folder) and `mandate` (the binary); optionally
# `extra_config` (TOML put before the keys). Afterwards `url` is the server's base URL and `work` a
# temporary folder removed on exit with the server stopped. Keys: admin-key (admin), gateway-key (read).
work=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/mandate.toml" <<TOML
${extra_config:-}
[[api_keys]]
key = "admin-key"
role = "admin"
[[api_keys]]
key = "gateway-key"
role = "read"
TOML
"$mandate" serve --config "$work/mandate.toml" --data-dir "$work/data" --listen 127.0.0.1:0 \
  --policy "$here/policy.polar" --facts "$here/facts.jsonl" >"$work/out" 2>"$work/err" &
server_pid=$!
for _ in $(seq 300); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/out" | head -1)
  [[ -n $url ]] && break
  sleep 0.1
done
if [[ -z ${url:-} ]]; then
  echo "the server did not start:" >&2
  cat "$work/err" >&2
  exit 1
fi

# call METHOD PATH [BODY] [KEY]: prints the response body (the admin key unless KEY is given).
call() {
  curl -sS -X "$1" "$url$2" -H "Authorization: Bearer ${4:-admin-key}" -H 'Content-Type: application/json' \
    ${3:+--data "$3"}
}
