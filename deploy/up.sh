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
  # The gateway's token secret (auth.env, 0600, never committed): made once, then kept.
  auth_env=deploy/compose/auth.env
  if [ ! -f "$auth_env" ]; then
    (umask 077 && printf 'VAE_AUTH_SECRET=%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$auth_env")
    echo "make up: wrote a new token secret to $auth_env (delete it to rotate)"
  fi
  echo "make up: $reason -> Docker Compose with Redpanda ($compose_file)"
  echo "make up: viewer and gateway http://localhost:8080/ (it asks for a token: vae token issue --scope 'subscribe:*' with VAE_AUTH_SECRET from $auth_env) | Redpanda Console http://localhost:8088/" \
    "| Grafana http://localhost:3000/ | Prometheus http://localhost:9090/ (Ctrl-C stops, make down removes)"
  # shellcheck disable=SC2086  # COMPOSE_UP_ARGS is a list of flags
  exec "$docker_bin" compose -f "$compose_file" up --build ${COMPOSE_UP_ARGS:-}
fi

echo "make up: $reason -> the embedded broker on this machine (vae up)"
exec "$make_bin" --no-print-directory up-local
