#!/bin/sh
# mmdebstrap customize hook for the kind node base (clusters/kind/install.sh): what kind's
# base image Dockerfile does after its package install, on a Debian root file system.
#   base-hook.sh ROOTFS KIND_FILES CRICTL
set -eu
root=$1 files=$2 crictl=$3
mkdir -p "$root/kind/bin" "$root/LICENSES" "$root/etc/kubernetes/manifests" "$root/opt/cni" \
  "$root/usr/local/sbin" "$root/usr/local/bin"
# kind's static files: scripts 0755, the rest 0644 (the module cache keeps them read-only).
cp -r --no-preserve=mode "$files/usr/local/bin/." "$root/usr/local/bin/"
cp -r --no-preserve=mode "$files/kind/." "$root/kind/"
cp -r --no-preserve=mode "$files/etc/." "$root/etc/"
chmod 0755 "$root"/usr/local/bin/* "$root/kind" "$root/kind/bin" "$root"/kind/bin/*
install -m 0755 "$crictl" "$root/usr/local/bin/crictl"
# Debian's containerd, runc and CNI plugins where kind's units and containerd's CRI expect them.
for b in containerd containerd-shim-runc-v2 ctr; do ln -sf "/usr/bin/$b" "$root/usr/local/bin/$b"; done
ln -sf /usr/sbin/runc "$root/usr/local/sbin/runc"
rm -rf "$root/opt/cni/bin" && ln -s /usr/lib/cni "$root/opt/cni/bin"
chroot "$root" sh -eu -c '
  find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
  rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
    /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
    /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
  echo ReadKMsg=no >>/etc/systemd/journald.conf
  ln -sf /usr/lib/systemd/systemd /sbin/init
  systemctl enable kubelet.service containerd.service undo-mount-hacks.service
  systemctl mask systemd-binfmt.service
  ctr oci spec \
    | jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" \
    | jq "del(.process.rlimits)" >/etc/containerd/cri-base.json
  test -s /etc/containerd/cri-base.json
'
