#!/usr/bin/env bash
# Builds the tresor image FROM scratch around a static binary.
#
#   deploy/docker/build.sh [TAG]        # default tag tresor:dev
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-tresor:dev}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" \
	-o "$ctx/tresor" ./cmd/tresor
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
cp deploy/docker/Dockerfile "$ctx/"
docker build -q -t "$tag" "$ctx"
