#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd used by internal/kubetest into a
# per-version cache dir, only when they are not there yet, and prints the dir.
# Versions are pinned by tools/kube/go.mod; only Go (and the module proxy) is
# needed. Override the dir with NANOFAAS_KUBE_BIN_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod="$root/tools/kube"

kube_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$mod/go.mod")"
if [[ -z "$kube_version" ]]; then
	echo "kube-binaries: k8s.io/kubernetes not found in $mod/go.mod" >&2
	exit 1
fi
bin_dir="${NANOFAAS_KUBE_BIN_DIR:-$HOME/.cache/nanofaas/kube-$kube_version}"

if [[ -x "$bin_dir/kube-apiserver" && -x "$bin_dir/etcd" ]]; then
	echo "$bin_dir"
	exit 0
fi

mkdir -p "$bin_dir"
# Build into a scratch dir and move into place, so an interrupted build never
# leaves a half-written binary that the "already built" check above accepts.
tmp="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

export CGO_ENABLED=0
export GOFLAGS="-trimpath -mod=readonly -buildvcs=false"

minor="${kube_version#v1.}"
minor="${minor%%.*}"
pkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"

start=$SECONDS
echo "kube-binaries: building kube-apiserver $kube_version and etcd into $bin_dir (first build takes minutes)" >&2
(
	cd "$mod"
	go build -ldflags="$kube_ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
	go build -ldflags="-s -w" -o "$tmp/etcd" ./etcd
)
mv -f "$tmp/kube-apiserver" "$tmp/etcd" "$bin_dir/"
echo "kube-binaries: built in $((SECONDS - start))s" >&2

echo "$bin_dir"
