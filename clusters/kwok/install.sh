#!/usr/bin/env bash
# Provision the binaries of a local Kubernetes control plane (kwok runtime "binary"),
# built from the Go module proxy into a versioned cache folder. Idempotent: only what is
# missing is built. Prints the bin folder on the last line of stdout.
#
#   clusters/kwok/install.sh            # everything (kwokctl, kwok, kube-*, etcd, helm, metrics-server)
#   clusters/kwok/install.sh --print    # print the bin folder, build nothing
#
# Environment: HELM_HARNESS_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/helm-harness),
# K8S_VERSION, KWOK_VERSION, ETCD_VERSION, HELM_VERSION, HELM4_VERSION,
# METRICS_SERVER_VERSION, INSTALL_HELM4=1, INSTALL_METRICS_SERVER=0 (metrics-server, which
# kwok clusters use for the metrics.k8s.io API when it is present, is built by default).
# Off by default, for the project's own tests and CI: INSTALL_REGISTRY=1 (an OCI registry,
# distribution's `registry`, REGISTRY_VERSION) and INSTALL_ACTIONLINT=1 (the workflow
# linter, ACTIONLINT_VERSION).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
HELM4_VERSION=${HELM4_VERSION:-v4.3.1}
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.8.0}
REGISTRY_VERSION=${REGISTRY_VERSION:-v3.1.2}
ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-v1.7.12}

CACHE=${HELM_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-harness}
BIN="$CACHE/bin/k8s-$K8S_VERSION-kwok-$KWOK_VERSION"
WORK="$CACHE/build"

say() { printf '[helm-harness tools] %s\n' "$*" >&2; }

if [[ "${1:-}" == "--print" ]]; then
  echo "$BIN"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  say "Go is not installed. Install Go 1.26 or later (Debian: apt-get install golang-go is too old;"
  say "use the official toolchain from your distribution's backports or 'go' package >= 1.26), then re-run."
  exit 3
fi

mkdir -p "$BIN" "$WORK"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=${GOTOOLCHAIN:-local}

have() { [[ -x "$BIN/$1" ]]; }

build_kwok() {
  if ! have kwokctl || ! have kwok; then
    say "building kwokctl and kwok $KWOK_VERSION"
    GOBIN="$BIN" go install -trimpath \
      -ldflags "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
      "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  fi
  # kwok's default stages, passed again beside the harness's own (any -c Stage drops them).
  [[ -f "$BIN/kwok-stages/pod-ready.yaml" ]] && return
  local src
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  [[ -d "$src" ]] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  mkdir -p "$BIN/kwok-stages"
  install -m 0644 "$src/node/fast/node-initialize.yaml" \
    "$src/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
    "$src/pod/fast/pod-ready.yaml" "$src/pod/fast/pod-complete.yaml" \
    "$src/pod/fast/pod-delete.yaml" "$BIN/kwok-stages/"
}

build_helm() {
  local name=$1 major=$2 version=$3
  have "$name" && return
  say "building $name $version"
  local mod="helm.sh/helm/$major" info dir gomod kube ld pkg
  info=$(go mod download -json "$mod@$version")
  dir=$(sed -n 's/.*"Dir": "\(.*\)",*/\1/p' <<<"$info")
  gomod=$(sed -n 's/.*"GoMod": "\(.*\)",*/\1/p' <<<"$info")
  # Helm's default capabilities (helm template, lint) follow its client-go: v0.N -> 1.N.
  kube=$(awk '$1 == "k8s.io/client-go" {print $2}' "$gomod")
  kube=${kube#v0.}
  kube=${kube%%.*}
  ld="-X $mod/internal/version.version=$version"
  for pkg in $(grep -rl --include='*.go' 'k8sVersionMajor = "' "$dir" | grep -v _test.go | xargs -n1 dirname | sort -u); do
    pkg="$mod${pkg#"$dir"}"
    ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kube"
  done
  local tmp
  tmp=$(mktemp -d "$WORK/helm.XXXX")
  GOBIN="$tmp" go install -trimpath -ldflags "$ld" "$mod/cmd/helm@$version"
  mv "$tmp/helm" "$BIN/$name"
  rmdir "$tmp"
}

# A throwaway module that requires $1 and builds main package(s) $2... from it.
wrapper_module() {
  local dir=$1
  mkdir -p "$dir"
  if [[ ! -f "$dir/go.mod" ]]; then
    (cd "$dir" && go mod init helm-harness.local/build >/dev/null 2>&1)
  fi
}

build_etcd() {
  have etcd && return
  say "building etcd $ETCD_VERSION"
  local dir="$WORK/etcd-$ETCD_VERSION"
  wrapper_module "$dir"
  (
    cd "$dir"
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go build -trimpath -o "$BIN/etcd" go.etcd.io/etcd/server/v3
  )
}

# The Kubernetes commands, all from ONE wrapper module and one `go build` (so kwok's control
# plane and kind's node binaries share their module downloads and build cache). kwok needs the
# three control-plane commands; KUBE_EXTRA_COMMANDS adds more (the kind test bed adds kubelet,
# kubeadm, kubectl and kube-proxy).
build_kubernetes() {
  local wanted="kube-apiserver kube-controller-manager kube-scheduler ${KUBE_EXTRA_COMMANDS:-}"
  local c missing=()
  for c in $wanted; do have "$c" || missing+=("$c"); done
  ((${#missing[@]})) || return 0
  say "building ${missing[*]} $K8S_VERSION (a cold build takes 10-25 min)"
  local dir="$WORK/kubernetes-$K8S_VERSION" staging minor="${K8S_VERSION#v1.}"
  minor="${minor%%.*}"
  local patch="${K8S_VERSION##*.}"
  wrapper_module "$dir"
  (
    cd "$dir"
    local gomod pkgs=()
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    staging=$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u)
    go mod edit "-require=k8s.io/kubernetes@$K8S_VERSION"
    local m
    for m in $staging; do
      go mod edit "-replace=$m=$m@v0.$minor.$patch"
    done
    for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    go get "${pkgs[@]/%/@$K8S_VERSION}"
    local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
    ld+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
    ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
    ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
    local tmp
    tmp=$(mktemp -d "$WORK/kube.XXXX")
    say "  go build ${missing[*]}"
    go build -trimpath -ldflags "$ld" -o "$tmp/" "${pkgs[@]}"
    for c in "${missing[@]}"; do mv "$tmp/$c" "$BIN/$c"; done
    rmdir "$tmp"
  )
}

build_metrics_server() {
  if ! have metrics-server; then
    say "building metrics-server $METRICS_SERVER_VERSION"
    local dir="$WORK/metrics-server-$METRICS_SERVER_VERSION"
    wrapper_module "$dir"
    (
      cd "$dir"
      go get "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
      # Stamped like its Makefile does, so `metrics-server --version` names the release.
      go build -trimpath -ldflags "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
        -o "$BIN/metrics-server.tmp" sigs.k8s.io/metrics-server/cmd/metrics-server
      mv "$BIN/metrics-server.tmp" "$BIN/metrics-server"
    )
  fi
  # The two objects kwokctl registers for it (APIService, Service); it would otherwise
  # download the release's components.yaml from GitHub.
  [[ -f "$BIN/metrics-server-manifest.yaml" ]] && return
  local src
  src="$(go env GOMODCACHE)/sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION/manifests/base"
  [[ -d "$src" ]] || go mod download "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION"
  { sed '/^---$/d' "$src/apiservice.yaml"; echo "---"; sed '/^---$/d' "$src/service.yaml"; } \
    >"$BIN/metrics-server-manifest.yaml.tmp"
  mv "$BIN/metrics-server-manifest.yaml.tmp" "$BIN/metrics-server-manifest.yaml"
}

# kwok's kubelet resource metrics (a Metric config), which the kwok provider passes, adjusted,
# to clusters that run metrics-server.
copy_kwok_metric() {
  [[ -f "$BIN/kwok-stages/metrics-resource.yaml" ]] && return
  local src
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/metrics/resource"
  [[ -d "$src" ]] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  mkdir -p "$BIN/kwok-stages"
  install -m 0644 "$src/metrics-resource.yaml" "$BIN/kwok-stages/"
}

# A main package built with `go install` into a temp folder, then moved in whole: $1 the
# binary's name, $2 the package@version, $3 ldflags.
go_install_bin() {
  local name=$1 pkg=$2 ld=$3 tmp
  tmp=$(mktemp -d "$WORK/$name.XXXX")
  GOBIN="$tmp" go install -trimpath -ldflags "$ld" "$pkg"
  mv "$tmp/$name" "$BIN/$name"
  rmdir "$tmp"
}

# distribution's OCI registry: the project's tests push charts to one on loopback.
build_registry() {
  have registry && return
  say "building registry (distribution) $REGISTRY_VERSION"
  local mod=github.com/distribution/distribution/v3
  go_install_bin registry "$mod/cmd/registry@$REGISTRY_VERSION" \
    "-X $mod/version.version=$REGISTRY_VERSION"
}

build_actionlint() {
  have actionlint && return
  say "building actionlint $ACTIONLINT_VERSION"
  go_install_bin actionlint "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" \
    "-X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION"
}

build_kwok
build_helm helm v3 "$HELM_VERSION"
[[ "${INSTALL_HELM4:-0}" == 1 ]] && build_helm helm4 v4 "$HELM4_VERSION"
build_etcd
build_kubernetes
if [[ "${INSTALL_METRICS_SERVER:-1}" == 1 ]]; then
  build_metrics_server
  copy_kwok_metric
fi
[[ "${INSTALL_REGISTRY:-0}" == 1 ]] && build_registry
[[ "${INSTALL_ACTIONLINT:-0}" == 1 ]] && build_actionlint
say "binaries ready in $BIN"
echo "$BIN"
