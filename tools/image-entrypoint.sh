#!/bin/sh
# ENTRYPOINT of the pricecast image: `docker run IMAGE registry list` runs `pricecast registry
# list`, while a command that is a program on PATH runs as given. kfp.local.DockerRunner (like
# `docker run IMAGE sh -c ...`) passes the component's command as arguments, not as a new
# entrypoint, so without this dispatch every containerized task would run `pricecast sh -c ...`.
# On Kubernetes, KFP sets the container `command`, which replaces this entrypoint altogether.
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ] || ! command -v "$1" >/dev/null 2>&1; then
  set -- pricecast "$@"
fi
exec "$@"
