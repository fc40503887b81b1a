#!/usr/bin/env bash
# Checks docker-compose.yml for real with the local images: up, ingest a document, query, down,
# up again (the document is still found: Chroma's named volume kept it), then down -v.
# Uses Debian's docker-compose (v1) or the compose plugin, whichever exists (installs docker-compose).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PORT=${COMPOSE_TEST_PORT:-18090}
export RAGSERVER_PORT=$PORT
PROJECT=ragops-compose-test
log() { printf '[compose-test] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

if docker compose version >/dev/null 2>&1; then DC=(docker compose)
else
  command -v docker-compose >/dev/null 2>&1 || { log "installing docker-compose"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >&2; }
  DC=(docker-compose)
fi
DC+=(-p "$PROJECT" -f docker-compose.yml)
created_env=0
if [ ! -f .env ]; then cp .env.example .env; created_env=1; fi
cleanup() {
  local rc=$?
  [ $rc -eq 0 ] || { "${DC[@]}" ps >&2 || true; "${DC[@]}" logs --tail=50 >&2 || true; }
  "${DC[@]}" down -v >/dev/null 2>&1 || true
  [ "$created_env" = 1 ] && rm -f .env
  exit $rc
}
trap cleanup EXIT

wait_ready() {
  local t0=$SECONDS
  until curl -sf "localhost:$PORT/readyz" >/dev/null; do
    [ $((SECONDS - t0)) -lt 120 ] || die "ragserver not ready on :$PORT after 120 s"
    sleep 1
  done
  log "ready in $((SECONDS - t0)) s"
}
ask() {
  curl -sf "localhost:$PORT/query" -H 'Content-Type: application/json' \
    -d '{"question":"Which project did the compose test approve?"}'
}

t0=$SECONDS
"${DC[@]}" up -d
wait_ready
curl -sf "localhost:$PORT/documents" -H 'Content-Type: application/json' \
  -d '{"documents":[{"source":"compose-test.md","text":"The compose test approved project Quillfeather for the next quarter."}]}' >/dev/null ||
  die "POST /documents failed"
grep -q '"compose-test.md"' <<<"$(ask)" || die "the new document is not among the sources"
log "first run answers with the new document ($((SECONDS - t0)) s)"

"${DC[@]}" down
"${DC[@]}" up -d
wait_ready
grep -q '"compose-test.md"' <<<"$(ask)" || die "after down/up the document is gone: Chroma's volume did not keep it"
log "PASS: up, ingest, query, down, up: data kept ($((SECONDS - t0)) s in all)"
