#!/usr/bin/env bash
# `make run`: the demo. Starts the echo upstream on 127.0.0.1:9080, then
# torii in the foreground on conf/torii.yaml (127.0.0.1:8080). Ctrl-C stops
# both.
set -u
cd "$(dirname "$0")/../.."
mkdir -p logs
build/mock-upstream --listen 127.0.0.1:9080 --id demo-upstream &
upstream=$!
trap 'kill $upstream 2>/dev/null; wait $upstream 2>/dev/null' EXIT
sleep 0.2
if ! kill -0 $upstream 2>/dev/null; then
  echo "the demo upstream could not start on 127.0.0.1:9080 (port in use?)" >&2
  exit 1
fi
cat <<'MSG'
torii demo: torii on http://127.0.0.1:8080, an echo upstream on 127.0.0.1:9080.
Try:
  curl -i http://127.0.0.1:8080/demo/hello      # proxied: the upstream echoes what it received
  curl -i http://127.0.0.1:8080/hello           # a route from conf/conf.d/example.yaml
  curl -i http://127.0.0.1:8080/nowhere         # no route: 404 with a JSON body
Logs: logs/error.log and logs/access.log. Ctrl-C to stop.
MSG
build/torii -p . -c conf/torii.yaml
