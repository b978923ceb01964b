#!/usr/bin/env bash
# Builds a minimal Node.js base image from this machine's files, for hosts that cannot pull images:
# the node binary, the shared libraries it links against (as `ldd` lists them), glibc's own shared objects
# (librt, libresolv, the NSS modules ...: native add-ons such as @node-rs/crc32 need more of glibc than node does),
# the libraries of the repo's native add-ons when node_modules is there, a /tmp, and /etc/passwd + /etc/group with
# root and node (uid/gid 1000, as in the official node images). The result is imported with `docker import` (no registry involved). It has no shell:
# Dockerfiles built on it use exec-form RUN/CMD only, which also work on node:20-bookworm-slim.
#   usage: scripts/docker-base-image.sh [IMAGE]   (default takhin-node-base:local)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-takhin-node-base:local}

node_bin=$(readlink -f "$(command -v node)")
stage=$(mktemp -d "${TMPDIR:-/tmp}/takhin-base.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# Copies $1's content to the same path under $stage, with its directory resolved (usr-merged /lib -> /usr/lib),
# keeping the name ldd asked for (libstdc++.so.6, not the versioned file it links to).
copy_resolved() {
  local dir
  dir=$(readlink -f "$(dirname "$1")")
  mkdir -p "$stage$dir"
  cp -L "$1" "$stage$dir/$(basename "$1")"
}

# Shared libraries ldd resolves for each ELF file given (absolute paths only; the vdso has none).
libraries_of() {
  for f in "$@"; do ldd "$f" 2>/dev/null || true; done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
}

# glibc's shared objects, from Debian's package list (elsewhere ldd's answers have to do).
glibc_objects() {
  command -v dpkg >/dev/null 2>&1 || return 0
  dpkg -L "libc6:$(dpkg --print-architecture)" 2>/dev/null | grep -E '^/(usr/)?lib(64)?/[^/]+-linux-gnu/[^/]+\.so(\.[0-9]+)*$' || true
}

# The repo's glibc native add-ons, so the image can load them (musl builds are skipped: ldd cannot read them).
addons=()
if [ -d node_modules ]; then
  while IFS= read -r f; do addons+=("$f"); done < <(find node_modules -name '*.node' -type f ! -name '*musl*')
fi

mkdir -p "$stage/usr/local/bin" "$stage/usr/lib" "$stage/usr/lib64" "$stage/usr/bin" "$stage/usr/sbin" \
  "$stage/etc" "$stage/tmp"
cp -L "$node_bin" "$stage/usr/local/bin/node"
{ libraries_of "$node_bin" "${addons[@]}"; glibc_objects; } | sort -u | while IFS= read -r lib; do copy_resolved "$lib"; done
# Debian's usr-merge layout: the loader path /lib64/ld-linux-x86-64.so.2 baked into every binary must resolve.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$stage/$d"; done
chmod 1777 "$stage/tmp"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnode:x:1000:1000::/tmp:/usr/sbin/nologin\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$stage/etc/group"

# Every file is root's; the broker's own data directory is made by the Dockerfile.
tar -C "$stage" --numeric-owner --owner=0 --group=0 -c . \
  | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["node"]' \
      --message "takhin-ts: node $("$node_bin" --version) and its libraries from $(hostname)" \
      - "$IMAGE" >/dev/null
docker run --rm "$IMAGE" node -e 'process.stdout.write(`base image ok: node ${process.version}\n`)'
echo "docker-base-image: built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE") bytes)" >&2
