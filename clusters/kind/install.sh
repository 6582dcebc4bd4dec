#!/usr/bin/env bash
# Provision the kind test bed on a machine that reaches no container registry: a Docker
# engine, the host egress guard, kind, and a kind node image whose every binary and image is
# built here from Debian's packages and the Go module proxy (see docs/testbeds.md).
# Idempotent: only what is missing (or whose inputs changed) is built; each step says what it
# does. Prints the node image's name on the last line of stdout.
#
#   clusters/kind/install.sh           # everything
#   clusters/kind/install.sh --print   # print the node image's name, build nothing
#
# Environment: HELM_HARNESS_CACHE, K8S_VERSION, KIND_VERSION, CRICTL_VERSION,
# LOCAL_PATH_VERSION, METRICS_SERVER_VERSION, KWOK_VERSION (the Kubernetes binaries are the
# kwok build's, extended: clusters/kwok/install.sh with KUBE_EXTRA_COMMANDS).
# Binaries land in the versioned cache; images stay in the Docker engine; build logs of a
# failed step are printed, and nothing half-tagged is left.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
KIND_VERSION=${KIND_VERSION:-v0.33.0}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CRICTL_VERSION=${CRICTL_VERSION:-v1.36.0}
LOCAL_PATH_VERSION=${LOCAL_PATH_VERSION:-v0.0.30}
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.8.0}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The provisioning files: clusters/ in a checkout, harness/_data/provision/ in a wheel.
PROVISION=$(cd "$HERE/.." && pwd)
ROOT=$(cd "$PROVISION/.." && pwd) # the checkout (its fixtures/), if this is one
CACHE=${HELM_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-harness}
KBIN="$CACHE/bin/kind-$KIND_VERSION-k8s-$K8S_VERSION"
WORK="$CACHE/build/kind"
NODE_IMAGE=${NODE_IMAGE:-helm-harness/kind-node:$K8S_VERSION}
BASE_IMAGE="helm-harness/kind-base:$KIND_VERSION"
FIXTURE_IMAGE=${FIXTURE_IMAGE:-helm-harness/fixture-app:1}

say() { printf '[helm-harness kind] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

if [[ "${1:-}" == "--print" ]]; then
  echo "$NODE_IMAGE"
  exit 0
fi

started=$SECONDS
mkdir -p "$KBIN" "$WORK"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=${GOTOOLCHAIN:-local}
# The proxy alone: with ",direct", a refused module sends the go command to its origin host.
GOPROXY=$(go env GOPROXY 2>/dev/null || echo https://proxy.golang.org)
export GOPROXY=${GOPROXY%%,direct}
export DOCKER_BUILDKIT=0 # Debian's docker.io has no buildx; the legacy builder is enough

# Run a step with its output in a log; on failure print the log's tail and stop.
step() {
  local name=$1
  shift
  local log="$WORK/$name.log"
  if ! "$@" >"$log" 2>&1; then
    say "step '$name' failed: $*"
    tail -n 40 "$log" >&2
    exit 1
  fi
}

# -- 1. Docker engine --------------------------------------------------------------------
docker_answers() { timeout 10 docker info >/dev/null 2>&1; }
ensure_docker() {
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      say "installing Docker (Debian package docker.io)"
      step apt-docker bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io'
    else
      die "no Docker engine: install Docker (Debian/Ubuntu: apt-get install docker.io) and re-run"
    fi
  fi
  docker_answers && return
  [[ $(id -u) == 0 ]] || die "the Docker engine does not answer (docker info); start dockerd and re-run"
  say "starting dockerd (log: $CACHE/dockerd.log)"
  # setsid: dockerd outlives this script (and the session that ran it), as a service would.
  setsid dockerd >>"$CACHE/dockerd.log" 2>&1 </dev/null &
  local i
  for i in $(seq 60); do
    docker_answers && return
    sleep 1
  done
  tail -n 20 "$CACHE/dockerd.log" >&2
  die "dockerd did not answer within 60 s"
}

# -- 2. Host egress guard (before any container starts) ------------------------------------
ensure_guard() {
  say "installing the host egress guard (no container traffic leaves the machine)"
  bash "$PROVISION/hostguard.sh" >&2 || die "the host egress guard could not be installed: no cluster may start"
}

# -- 3. Binaries ----------------------------------------------------------------------------
have() { [[ -x "$KBIN/$1" ]]; }

# A wrapper module requiring $2@$3 that builds package $4 into $KBIN/$1 (ldflags $5).
build_module_bin() {
  local name=$1 mod=$2 version=$3 pkg=$4 ld=${5:-}
  have "$name" && return
  say "building $name ($mod@$version)"
  local dir="$WORK/src-$name-$version"
  mkdir -p "$dir"
  [[ -f "$dir/go.mod" ]] || (cd "$dir" && go mod init helm-harness.local/build >/dev/null 2>&1)
  (
    cd "$dir"
    step "get-$name" go get "$pkg@$version"
    step "build-$name" go build -trimpath -ldflags "-s -w $ld" -o "$KBIN/$name.tmp" "$pkg"
  )
  mv "$KBIN/$name.tmp" "$KBIN/$name"
}

build_tools() {
  if ! have kind; then
    say "building kind $KIND_VERSION"
    local tmp
    tmp=$(mktemp -d "$WORK/kind.XXXX")
    step build-kind env GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
    mv "$tmp/kind" "$KBIN/kind"
    rmdir "$tmp"
  fi
  build_module_bin crictl sigs.k8s.io/cri-tools "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
}

build_binaries() {
  build_tools
  say "Kubernetes $K8S_VERSION binaries (one build shared with the kwok control plane)"
  KBIN_KUBE=$(KUBE_EXTRA_COMMANDS="kubelet kubeadm kubectl kube-proxy" INSTALL_METRICS_SERVER=1 \
    K8S_VERSION="$K8S_VERSION" KWOK_VERSION="$KWOK_VERSION" METRICS_SERVER_VERSION="$METRICS_SERVER_VERSION" \
    bash "$PROVISION/kwok/install.sh" | tail -n 1)
  [[ -x "$KBIN_KUBE/kubeadm" ]] || die "the Kubernetes build did not produce kubeadm in $KBIN_KUBE"
  build_module_bin local-path-provisioner github.com/rancher/local-path-provisioner \
    "$LOCAL_PATH_VERSION" github.com/rancher/local-path-provisioner
  if ! have pause; then
    say "building pause (gcc -static, from the Kubernetes module)"
    command -v gcc >/dev/null || die "gcc is needed for the pause binary (apt-get install gcc)"
    local src
    src="$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
    [[ -f "$src" ]] || step mod-kubernetes go mod download "k8s.io/kubernetes@$K8S_VERSION"
    step build-pause gcc -Os -Wall -Werror -static -DVERSION="v3.10-helm-harness" -o "$KBIN/pause.tmp" "$src"
    mv "$KBIN/pause.tmp" "$KBIN/pause"
  fi
}

# The images kubeadm asks for: "registry.k8s.io/NAME:TAG" lines.
kubeadm_images() {
  "$KBIN_KUBE/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# Build image $1 from a scratch context holding the files "SRC:DEST" given after "--"; extra
# Dockerfile lines come first ($2).
scratch_image() {
  local tag=$1 lines=$2
  shift 3
  image_exists "$tag" && return
  say "building image $tag"
  local ctx
  ctx=$(mktemp -d "$WORK/ctx.XXXX")
  mkdir -p "$ctx/root/tmp" "$ctx/root/etc"
  chmod 1777 "$ctx/root/tmp"
  printf 'root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$ctx/root/etc/passwd"
  local pair
  for pair in "$@"; do
    mkdir -p "$ctx/root$(dirname "${pair#*:}")"
    cp -L "${pair%%:*}" "$ctx/root${pair#*:}"
  done
  printf 'FROM scratch\nCOPY root/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\n%b\n' "$lines" >"$ctx/Dockerfile"
  step "image-$(basename "${tag%%:*}")" docker build -q -t "$tag" "$ctx"
  rm -rf "$ctx"
}

# A Debian root file system, imported as an image ($1 tag, $2 variant, $3 packages, rest:
# mmdebstrap options such as customize hooks).
debian_image() {
  local tag=$1 variant=$2 packages=$3
  shift 3
  image_exists "$tag" && return
  command -v mmdebstrap >/dev/null || step apt-mmdebstrap bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap'
  say "building image $tag (mmdebstrap $variant $DEBIAN_SUITE: $packages)"
  local tar="$WORK/rootfs-$(basename "${tag%%:*}").tar"
  step "rootfs-$(basename "${tag%%:*}")" mmdebstrap --variant="$variant" --include="$packages" \
    --aptopt='APT::Install-Recommends "false"' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$@" "$DEBIAN_SUITE" "$tar" "$(debian_mirror)"
  step "import-$(basename "${tag%%:*}")" docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$tar" "$tag"
  rm -f "$tar"
}

# The host's Debian sources (the only package site these machines reach).
debian_mirror() {
  local file
  for file in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [[ -s "$file" ]] && grep -q '^[^#]' "$file"; then
      echo "$file"
      return
    fi
  done
  echo "http://deb.debian.org/debian"
}

# -- 4. Component images, under the exact tags kubeadm and kind ask for ------------------------
build_component_images() {
  local images image etcd_version coredns_version
  images=$(kubeadm_images)
  [[ -n "$images" ]] || die "kubeadm config images list printed nothing"
  IMAGES_FOR_NODE=()
  for image in $images; do
    case "$image" in
      */kube-apiserver:* | */kube-controller-manager:* | */kube-scheduler:*)
        local c=${image##*/}
        c=${c%%:*}
        scratch_image "$image" "ENTRYPOINT [\"/usr/local/bin/$c\"]" -- "$KBIN_KUBE/$c:/usr/local/bin/$c"
        ;;
      */kube-proxy:*)
        debian_image "$image" essential iptables,conntrack,nftables,kmod \
          --customize-hook="copy-in $KBIN_KUBE/kube-proxy /usr/local/bin"
        ;;
      */etcd:*)
        etcd_version=${image##*:}
        etcd_version=v${etcd_version%-*}
        build_module_bin "etcd-$etcd_version" go.etcd.io/etcd/server/v3 "$etcd_version" go.etcd.io/etcd/server/v3
        scratch_image "$image" 'ENTRYPOINT ["/usr/local/bin/etcd"]' -- "$KBIN/etcd-$etcd_version:/usr/local/bin/etcd"
        ;;
      */coredns:*)
        coredns_version=${image##*:}
        build_module_bin "coredns-$coredns_version" github.com/coredns/coredns "$coredns_version" github.com/coredns/coredns
        scratch_image "$image" 'ENTRYPOINT ["/coredns"]' -- "$KBIN/coredns-$coredns_version:/coredns"
        ;;
      */pause:*)
        scratch_image "$image" 'ENTRYPOINT ["/pause"]' -- "$KBIN/pause:/pause"
        ;;
      *) die "kubeadm asks for an image this script does not know how to build: $image" ;;
    esac
    IMAGES_FOR_NODE+=("$image")
  done
  # kind's containerd config names its own sandbox image.
  local sandbox
  sandbox=$(sed -n 's/^\s*sandbox_image\s*=\s*"\(.*\)"/\1/p' "$KIND_SRC/images/base/files/etc/containerd/config.toml")
  scratch_image "$sandbox" 'ENTRYPOINT ["/pause"]' -- "$KBIN/pause:/pause"
  IMAGES_FOR_NODE+=("$sandbox")
  # kind's default storage (local-path-provisioner and its helper), under the names kind's
  # storage manifest uses.
  local provisioner helper
  provisioner=$(sed -n 's/^const storageProvisionerImage = "\(.*\)"/\1/p' "$KIND_SRC/pkg/build/nodeimage/const_storage.go")
  helper=$(sed -n 's/^const storageHelperImage = "\(.*\)"/\1/p' "$KIND_SRC/pkg/build/nodeimage/const_storage.go")
  [[ -n "$provisioner" && -n "$helper" ]] || die "could not read kind's storage image names"
  scratch_image "$provisioner" 'ENTRYPOINT ["/usr/local/bin/local-path-provisioner"]' -- \
    "$KBIN/local-path-provisioner:/usr/local/bin/local-path-provisioner"
  build_busybox
  scratch_image "$helper" 'ENTRYPOINT ["/bin/sh"]' -- "$BUSYBOX_ROOT/bin/busybox:/bin/busybox" \
    "$BUSYBOX_ROOT/bin/busybox:/bin/sh"
  IMAGES_FOR_NODE+=("$provisioner" "$helper")
  local ms="helm-harness/metrics-server:$METRICS_SERVER_VERSION"
  scratch_image "$ms" 'USER 1000\nENTRYPOINT ["/metrics-server"]' -- "$KBIN_KUBE/metrics-server:/metrics-server"
  IMAGES_FOR_NODE+=("$ms")
  STORAGE_PROVISIONER=$provisioner STORAGE_HELPER=$helper METRICS_IMAGE=$ms
}

# busybox (Debian's busybox-static), the shell in local-path-provisioner's helper pods.
build_busybox() {
  BUSYBOX_ROOT="$WORK/busybox"
  [[ -x "$BUSYBOX_ROOT/bin/busybox" ]] && return
  say "unpacking busybox-static (Debian)"
  rm -rf "$BUSYBOX_ROOT.tmp" && mkdir -p "$BUSYBOX_ROOT.tmp"
  (cd "$BUSYBOX_ROOT.tmp" && step download-busybox apt-get download busybox-static)
  step unpack-busybox dpkg-deb -x "$(ls "$BUSYBOX_ROOT".tmp/busybox-static_*.deb)" "$BUSYBOX_ROOT.tmp/root"
  rm -rf "$BUSYBOX_ROOT" && mv "$BUSYBOX_ROOT.tmp/root" "$BUSYBOX_ROOT" && rm -rf "$BUSYBOX_ROOT.tmp"
}

# -- 5. Node base: kind's base image, from Debian packages ---------------------------------------
# kind's package list (images/base/Dockerfile) plus Debian's containerd, runc and CNI plugins
# in place of the binaries kind's image builds from git.
BASE_PACKAGES=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,nfs-common,e2fsprogs,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins

base_inputs() {
  { echo "$BASE_PACKAGES $DEBIAN_SUITE $KIND_VERSION $CRICTL_VERSION"; declare -f build_base debian_image; cat "$HERE/node/base-hook.sh"; } | sha256sum | cut -c1-16
}

build_base() {
  local want have_label
  want=$(base_inputs)
  have_label=$(docker image inspect -f '{{index .Config.Labels "io.helm-harness.inputs"}}' "$BASE_IMAGE" 2>/dev/null || true)
  [[ "$have_label" == "$want" ]] && return
  build_tools
  local raw="$BASE_IMAGE-rootfs"
  docker image rm -f "$raw" >/dev/null 2>&1 || true
  # What kind's base Dockerfile does after its package install (node/base-hook.sh).
  debian_image "$raw" minbase "$BASE_PACKAGES" \
    --customize-hook="$HERE/node/base-hook.sh \"\$1\" $KIND_SRC/images/base/files $KBIN/crictl"
  # docker import (20.10) cannot set STOPSIGNAL: add the metadata in a build of its own.
  local ctx
  ctx=$(mktemp -d "$WORK/ctx.XXXX")
  printf 'FROM %s\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\nLABEL io.helm-harness.inputs=%s\nENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\n' \
    "$raw" "$want" >"$ctx/Dockerfile"
  step image-base docker build -q -t "$BASE_IMAGE" "$ctx"
  rm -rf "$ctx"
  docker image rm "$raw" >/dev/null 2>&1 || true
}

# -- 6. The node image: what `kind build node-image` does, from local parts ----------------------
node_inputs() {
  {
    docker image inspect -f '{{.Id}}' "$BASE_IMAGE"
    local image
    for image in "${IMAGES_FOR_NODE[@]}"; do docker image inspect -f '{{.Id}}' "$image"; done
    # Contents only (not paths): a clone elsewhere reuses the image.
    sha256sum "$KBIN_KUBE/kubeadm" "$KBIN_KUBE/kubelet" "$KBIN_KUBE/kubectl" "$HERE"/node/* | cut -c1-64
    declare -f build_node import_images
  } | sha256sum | cut -c1-16
}

# Import the component images into a containerd content store under $1 (the node's
# /var/lib/containerd), with the host's containerd, as the node's containerd would.
import_images() {
  local root=$1 state
  state=$(mktemp -d /tmp/hh-ctrd.XXXX)
  printf 'version = 2\nroot = "%s"\nstate = "%s"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/sock"\n' \
    "$root" "$state" "$state" >"$state/config.toml"
  containerd --config "$state/config.toml" >"$WORK/import-containerd.log" 2>&1 &
  local pid=$! i
  for i in $(seq 50); do
    [[ -S "$state/sock" ]] && ctr -a "$state/sock" version >/dev/null 2>&1 && break
    sleep 0.2
  done
  local ok=0
  if docker save "${IMAGES_FOR_NODE[@]}" \
    | ctr -a "$state/sock" -n k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - >"$WORK/import.log" 2>&1; then
    ok=1
  fi
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  rm -rf "$state"
  ((ok)) || { tail -n 20 "$WORK/import.log" >&2; die "importing the component images into the node's containerd failed"; }
}

build_node() {
  local want have_label
  want=$(node_inputs)
  have_label=$(docker image inspect -f '{{index .Config.Labels "io.helm-harness.inputs"}}' "$NODE_IMAGE" 2>/dev/null || true)
  [[ "$have_label" == "$want" ]] && return
  say "building the node image $NODE_IMAGE"
  command -v containerd >/dev/null && command -v ctr >/dev/null || die "containerd and ctr are needed (Debian: containerd)"
  local ctx
  ctx=$(mktemp -d "$WORK/node.XXXX")
  local layer="$ctx/layer"
  mkdir -p "$layer/usr/bin" "$layer/usr/local/bin" "$layer/kind/manifests" "$layer/etc/cni/net.d" \
    "$layer/etc/systemd/system/multi-user.target.wants" "$layer/var/lib/containerd"
  cp "$KBIN_KUBE/kubeadm" "$KBIN_KUBE/kubelet" "$KBIN_KUBE/kubectl" "$layer/usr/bin/"
  printf '%s' "$K8S_VERSION" >"$layer/kind/version"
  install -m 0755 "$HERE/node/preentry" "$layer/usr/local/bin/harness-preentry"
  install -m 0755 "$HERE/node/netguard" "$layer/usr/local/bin/harness-netguard"
  install -m 0644 "$HERE/node/harness-netguard.service" "$layer/etc/systemd/system/"
  ln -s /etc/systemd/system/harness-netguard.service "$layer/etc/systemd/system/multi-user.target.wants/"
  install -m 0644 "$HERE/node/10-harness-bridge.conflist" "$layer/etc/cni/net.d/"
  install -m 0644 "$HERE/node/default-cni.yaml" "$layer/kind/manifests/default-cni.yaml"
  # kind applies default-storage.yaml at create: its own storage manifest (a Go string in
  # kind's source), then the metrics-server addon.
  {
    sed -n '/^const defaultStorageManifest = `/,/^`$/p' "$KIND_SRC/pkg/build/nodeimage/const_storage.go" \
      | sed -e '1d' -e '$d' -e "s|\` + storageProvisionerImage + \`|$STORAGE_PROVISIONER|" \
        -e "s|\` + storageHelperImage + \`|$STORAGE_HELPER|"
    echo "---"
    sed "s|IMAGE|$METRICS_IMAGE|" "$HERE/node/metrics-server.yaml"
  } >"$layer/kind/manifests/default-storage.yaml"
  grep -q "image: $STORAGE_PROVISIONER" "$layer/kind/manifests/default-storage.yaml" \
    || die "could not read kind's storage manifest from its source"
  say "  importing ${#IMAGES_FOR_NODE[@]} images into the node's containerd"
  import_images "$layer/var/lib/containerd"
  printf 'FROM %s\nCOPY layer/ /\nLABEL io.helm-harness.inputs=%s\nENTRYPOINT ["/usr/local/bin/harness-preentry", "/usr/local/bin/entrypoint", "/sbin/init"]\n' \
    "$BASE_IMAGE" "$want" >"$ctx/Dockerfile"
  local tmp_tag="$NODE_IMAGE-building"
  step image-node docker build -q -t "$tmp_tag" "$ctx"
  docker tag "$tmp_tag" "$NODE_IMAGE"
  docker image rm "$tmp_tag" >/dev/null
  rm -rf "$ctx"
  docker image prune -f --filter "label=io.helm-harness.inputs" >/dev/null 2>&1 || true
}

# -- 7. The project's fixture images ----------------------------------------------------------
build_fixture_images() {
  local src="$ROOT/fixtures/images/app" want have_label
  want=$(cat "$src"/* | sha256sum | cut -c1-16)
  have_label=$(docker image inspect -f '{{index .Config.Labels "io.helm-harness.inputs"}}' "$FIXTURE_IMAGE" 2>/dev/null || true)
  [[ "$have_label" == "$want" ]] && return
  say "building the fixture image $FIXTURE_IMAGE"
  local ctx
  ctx=$(mktemp -d "$WORK/fixture.XXXX")
  (cd "$src" && step build-fixture-app go build -trimpath -ldflags "-s -w" -o "$ctx/fixture-app" .)
  cp "$src/Dockerfile" "$ctx/"
  step image-fixture docker build -q --label "io.helm-harness.inputs=$want" -t "$FIXTURE_IMAGE" "$ctx"
  rm -rf "$ctx"
}

# HH_KIND_STEPS="kind base ..." runs only the named steps (for working on one of them).
wanted() { [[ -z "${HH_KIND_STEPS:-}" || " $HH_KIND_STEPS " == *" $1 "* ]]; }
ensure_docker
ensure_guard
command -v go >/dev/null || die "Go is not installed: install Go 1.26 or later, then re-run"
KIND_SRC="$(go env GOMODCACHE)/sigs.k8s.io/kind@$KIND_VERSION"
[[ -d "$KIND_SRC/images/base/files" ]] || step mod-kind go mod download "sigs.k8s.io/kind@$KIND_VERSION"
KBIN_KUBE=$(bash "$PROVISION/kwok/install.sh" --print)
wanted binaries && build_binaries
wanted base && build_base
wanted images && build_component_images
wanted node && build_node
# The project's own fixture image, from a checkout only (a wheel has no fixtures/).
if [[ -d "$ROOT/fixtures/images/app" ]]; then
  wanted fixtures && build_fixture_images
fi
ln -sf "$KBIN/kind" "$KBIN_KUBE/kind"
say "kind test bed ready in $((SECONDS - started)) s: kind $KBIN/kind, node image $NODE_IMAGE, fixture image $FIXTURE_IMAGE"
echo "$NODE_IMAGE"
