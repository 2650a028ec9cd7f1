#!/usr/bin/env bash
# Builds the Greengrass artifact for one target and a recipe that names it:
#
#   deploy/greengrass/package.sh TARGET [OUT_DIR]       (TARGET: x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu)
#
# writes OUT_DIR (default out/greengrass)/
#   hallmark-TARGET.zip   bin/hallmark, lib/libonnxruntime.so, models/<brand>/ (the shipped bundles)
#                         and models/keys/*.pub.pem; a ZIP because Greengrass unpacks ZIP only
#   recipe.yaml           deploy/greengrass/recipe.yaml with this archive's Digest (base64 of its
#                         SHA-256, as Greengrass writes it) and the bucket filled in; run it once per
#                         target with the same OUT_DIR and the copy collects both digests
# Then: aws s3 cp OUT_DIR/hallmark-TARGET.zip s3://BUCKET/com.hallmark.agent/VERSION/
#       aws greengrassv2 create-component-version --inline-recipe fileb://OUT_DIR/recipe.yaml
#
# Environment:
#   BUCKET        S3 bucket for the artifact URIs (default: leaves the placeholder)
#   ORT_LIB       libonnxruntime.so for TARGET (default for the host target: the project's .venv;
#                 for aarch64 take it from the onnxruntime aarch64 wheel)
#   CARGO         the build command (default: cargo; for aarch64 on an x86_64 host,
#                 scripts/cross-aarch64.sh --release with Debian's cross compilers)
#   HALLMARK_BIN  an already built binary for TARGET (skips the build)
#   KEYS          publisher public keys to ship (default models/keys/*.pub.pem: the DEMO key;
#                 a fleet ships its own)
set -euo pipefail
cd "$(dirname "$0")/../.."

target=${1:?usage: deploy/greengrass/package.sh TARGET [OUT_DIR]}
out=${2:-out/greengrass}
case "$target" in
  x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
  *) echo "package.sh: unsupported target $target (the recipe has x86_64 and aarch64 Linux)" >&2; exit 2 ;;
esac
name="hallmark-$target"
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
recipe_version=$(sed -n "s/^ComponentVersion: *'\(.*\)'/\1/p" deploy/greengrass/recipe.yaml)
if [ "$version" != "$recipe_version" ]; then
  echo "package.sh: the recipe says $recipe_version, the workspace $version" >&2
  exit 2
fi

# 1. The binary.
if [ -n "${HALLMARK_BIN:-}" ]; then
  bin=$HALLMARK_BIN
elif [ -z "${CARGO:-}" ] && [ "$target" = aarch64-unknown-linux-gnu ] \
    && [ "$(rustc -vV | sed -n 's/^host: //p')" != "$target" ]; then
  scripts/cross-aarch64.sh --release
  bin="target/$target/release/hallmark"
else
  ${CARGO:-cargo} build --release --locked -p hallmark-agent --target "$target"
  bin="target/$target/release/hallmark"
fi
[ -x "$bin" ] || { echo "package.sh: no binary at $bin" >&2; exit 2; }

# 2. ONNX Runtime for the target.
if [ -z "${ORT_LIB:-}" ]; then
  if [ "$target" = "$(rustc -vV | sed -n 's/^host: //p')" ]; then
    ORT_LIB=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n1 || true)
  fi
fi
[ -f "${ORT_LIB:-}" ] || { echo "package.sh: set ORT_LIB to libonnxruntime.so for $target" >&2; exit 2; }

# 3. Stage and zip (entries at the archive's root: Greengrass unpacks into a folder named after it).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/models/keys" "$out"
cp "$bin" "$stage/bin/hallmark"
cp "$ORT_LIB" "$stage/lib/libonnxruntime.so"
# Whole bundles: the agent opens a bundle only with every file its signed manifest lists (variants,
# reference artwork, report), and refuses one with a file missing.
for manifest in models/*/manifest.json; do
  bundle=$(dirname "$manifest")
  mkdir -p "$stage/$bundle"
  cp -R "$bundle/." "$stage/$bundle/"
done
# shellcheck disable=SC2086 # KEYS is a list of paths
cp ${KEYS:-models/keys/*.pub.pem} "$stage/models/keys/"
zip="$(cd "$out" && pwd)/$name.zip"
rm -f "$zip"
(cd "$stage" && zip -qr -X "$zip" bin lib models)

# 4. The recipe copy: this archive's digest, the bucket.
digest=$(openssl dgst -sha256 -binary "$zip" | base64 | tr -d '\n')
[ -f "$out/recipe.yaml" ] || cp deploy/greengrass/recipe.yaml "$out/recipe.yaml"
sed -i "s|REPLACE_WITH_SHA256_BASE64_OF_$name.zip|$digest|" "$out/recipe.yaml"
if [ -n "${BUCKET:-}" ]; then
  sed -i "s|s3://REPLACE_WITH_BUCKET/|s3://$BUCKET/|" "$out/recipe.yaml"
fi
echo "$zip  sha256(base64)=$digest" >&2
echo "recipe: $out/recipe.yaml" >&2
