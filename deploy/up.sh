#!/usr/bin/env bash
# `make up`: the whole engine, on the best broker this machine offers, and it says which.
#   a Docker engine answers -> Docker Compose (deploy/compose): Redpanda with its schema
#                              registry, Console, gateway, worker(s), replay of the sample
#                              clip, Prometheus, Grafana
#   otherwise               -> `make up-local`: `vae up` with the embedded broker
# UP_MODE=compose or UP_MODE=local skips the detection. DOCKER and MAKE name the programs.
set -euo pipefail
cd "$(dirname "$0")/.."

compose_file=deploy/compose/docker-compose.yml
mode=${UP_MODE:-auto}
docker_bin=${DOCKER:-docker}
make_bin=${MAKE:-make}

# An HS256 JWT (what `vae token issue` prints) with the standard tools: secret, scopes, ttl (s).
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
mint_token() {
  local now header payload
  now=$(date +%s)
  header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  payload=$(printf '{"sub":"make-up","scope":"%s","iat":%d,"exp":%d}' "$2" "$now" $((now + $3)) | b64url)
  printf '%s.%s.%s' "$header" "$payload" \
    "$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$1" -binary | b64url)"
}

case "$mode" in
  auto)
    if ! command -v "$docker_bin" >/dev/null 2>&1; then
      mode=local reason="no '$docker_bin' command on PATH"
    elif "$docker_bin" info >/dev/null 2>&1; then
      mode=compose reason="a Docker engine answers ('$docker_bin info')"
    else
      mode=local reason="no Docker engine answers ('$docker_bin info' failed; the client alone is not enough)"
    fi
    ;;
  compose | local) reason="UP_MODE=$mode" ;;
  *)
    echo "make up: UP_MODE must be auto, compose or local, not '$mode'" >&2
    exit 2
    ;;
esac

if [ "$mode" = compose ]; then
  if ! "$docker_bin" compose version >/dev/null 2>&1; then
    echo "make up: $reason, but the Compose plugin is missing ('$docker_bin compose version' failed)." >&2
    echo "make up: install Docker Compose v2, or run UP_MODE=local make up" >&2
    exit 1
  fi
  # The gateway's token secret (0600, never committed): made once, then kept; and the
  # token Prometheus scrapes the gateway with. Delete secrets/auth.env to rotate.
  secrets_dir=deploy/compose/secrets
  if [ ! -f "$secrets_dir/auth.env" ]; then
    (umask 077 && printf 'VAE_AUTH_SECRET=%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$secrets_dir/auth.env")
    echo "make up: wrote a new token secret to $secrets_dir/auth.env (delete it to rotate)"
  fi
  secret=$(sed -n 's/^VAE_AUTH_SECRET=//p' "$secrets_dir/auth.env")
  viewer=http://localhost:8080/
  if command -v openssl >/dev/null 2>&1; then
    (umask 022 && mint_token "$secret" metrics 31536000 >"$secrets_dir/gateway-metrics.token")
    viewer="http://localhost:8080/#token=$(mint_token "$secret" 'ingest:* subscribe:*' 604800)"
  else
    echo "make up: no openssl here to sign tokens: the viewer will ask for one (vae token issue)" >&2
  fi
  echo "make up: $reason -> Docker Compose with Redpanda ($compose_file)"
  echo "make up: viewer and gateway $viewer | Redpanda Console http://localhost:8088/" \
    "| Grafana http://localhost:3000/ | Prometheus http://localhost:9090/ (Ctrl-C stops, make down removes)"
  # shellcheck disable=SC2086  # COMPOSE_UP_ARGS is a list of flags
  exec "$docker_bin" compose -f "$compose_file" up --build ${COMPOSE_UP_ARGS:-}
fi

echo "make up: $reason -> the embedded broker on this machine (vae up)"
exec "$make_bin" --no-print-directory up-local
