#!/usr/bin/env bash
# Build the albus OCI image without a container daemon or registry, reproducibly:
#   * the root filesystem: Debian bookworm (its python3 is the 3.11 albus needs) from
#     Debian's archive with mmdebstrap, dated SOURCE_DATE_EPOCH (default: the last commit);
#   * albus and its dependencies as wheels (pip, from PyPI), installed into /opt/albus
#     inside it, byte code compiled with hashes instead of timestamps;
#   * packed as an OCI image layout with umoci (one layer; user 10001, entrypoint `albus`);
#   * then run once: the image unpacked and `albus --help` and an offline
#     `albus translate` run in it as uid 10001 (chroot; no container runtime here).
# Needs: mmdebstrap, umoci (apt-get install mmdebstrap umoci), python3.11, root.
# Output: build/image/oci (image layout, tag albus:<version>) and build/image/albus.oci.tar.
# The Dockerfile beside this script builds the same image where a daemon exists.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$REPO/build/image}
PY=${PYTHON:-$REPO/.venv/bin/python}
TAG=${TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -1)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct)}
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# The image's Python is Debian bookworm's; dependencies are resolved for it, not for the
# builder's (a newer soupsieve needs 3.11.5). constraints.txt (beside this script), when
# present, pins every version: the image it gives is the same from one day to the next.
TARGET_PY=3.11.2
CONSTRAINTS=()
[ -f "$REPO/deploy/image/constraints.txt" ] && CONSTRAINTS=(-c "$REPO/deploy/image/constraints.txt")
echo ">> wheels for albus $TAG and its dependencies (for Python $TARGET_PY)"
"$PY" -m pip wheel --quiet --no-deps -w "$WORK/self" "$REPO"
# Dependencies published only as source are built into wheels here first (pure Python).
"$PY" -m pip wheel --quiet "${CONSTRAINTS[@]}" -w "$WORK/built" "$WORK"/self/albus-*.whl
"$PY" -m pip download --quiet "${CONSTRAINTS[@]}" -d "$WORK/wheels" --find-links "$WORK/built" \
  --only-binary=:all: --python-version "$TARGET_PY" --implementation cp --abi cp311 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  --platform linux_x86_64 "$WORK"/self/albus-*.whl
cp "$WORK"/self/albus-*.whl "$WORK/wheels/"

echo ">> root filesystem (Debian bookworm, dated $CREATED)"
mmdebstrap --quiet --variant=essential --mode=root \
  --include=passwd,python3,python3-venv,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='mkdir -p "$1/tmp/wheels"' \
  --customize-hook="copy-in $WORK/wheels/. /tmp/wheels" \
  --customize-hook='chroot "$1" groupadd --gid 10001 albus' \
  --customize-hook='chroot "$1" useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin albus' \
  --customize-hook='chroot "$1" python3 -m venv /opt/albus' \
  --customize-hook='chroot "$1" env -i PATH=/usr/bin:/bin /opt/albus/bin/pip install --quiet --no-index --no-compile --find-links /tmp/wheels albus' \
  --customize-hook="chroot \"\$1\" env -i /opt/albus/bin/pip freeze --exclude albus > $OUT/requirements.lock" \
  --customize-hook='rm -rf "$1/tmp/wheels" "$1/opt/albus/bin/nats-server" "$1"/var/lib/apt/lists/* "$1"/var/cache/*' \
  --customize-hook='find "$1/opt/albus" -name __pycache__ -prune -exec rm -rf {} +' \
  --customize-hook='chroot "$1" /opt/albus/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/albus' \
  bookworm "$WORK/rootfs.tar"

echo ">> OCI image albus:$TAG"
rm -rf "$OUT/oci"
umoci init --layout "$OUT/oci"
umoci new --image "$OUT/oci:$TAG"
umoci raw add-layer --image "$OUT/oci:$TAG" --history.created "$CREATED" "$WORK/rootfs.tar"
umoci config --image "$OUT/oci:$TAG" --created "$CREATED" --history.created "$CREATED" \
  --config.user 10001:10001 --config.entrypoint albus --config.cmd --help \
  --config.env PATH=/opt/albus/bin:/usr/local/bin:/usr/bin:/bin \
  --config.env PYTHONDONTWRITEBYTECODE=1 --config.env PYTHONUNBUFFERED=1 \
  --config.env ALBUS_CONFIG=/etc/albus/config.yaml
umoci gc --layout "$OUT/oci"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -C "$OUT/oci" -cf "$OUT/albus.oci.tar" .
DIGEST=$(sed -n 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p' "$OUT/oci/index.json" | head -1)
echo ">> image manifest $DIGEST"

echo ">> run once: the entrypoint as uid 10001 in the unpacked image"
umoci unpack --image "$OUT/oci:$TAG" "$WORK/bundle" >/dev/null
ROOTFS="$WORK/bundle/rootfs"
run() { chroot --userspec=10001:10001 "$ROOTFS" /usr/bin/env -i PATH=/opt/albus/bin:/usr/bin:/bin HOME=/tmp "$@"; }
run albus --help | head -3
cat > "$ROOTFS/tmp/service.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  ports: [{name: http, port: 80, protocol: TCP}]
YAML
printf 'NetworkSettings:\n  vipNetworkList: [{networkName: vip-net, cidr: 10.10.0.0/24}]\n' > "$ROOTFS/tmp/config.yaml"
run albus translate -f /tmp/service.yaml --cluster image-check --config /tmp/config.yaml \
  | grep -c '"name": "image-check--shop-web"' \
  | sed 's/^/>> offline translation in the image: objects named image-check--shop-web: /'
echo "$DIGEST" > "$OUT/digest"
