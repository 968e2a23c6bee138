#!/usr/bin/env bash
# Uploads and downloads a 2 GiB object through a fresh `tresor serve` and
# reports the gateway process's peak resident set size (VmHWM from
# /proc/PID/status). Fails if the peak exceeds LIMIT_MIB (default 200).
#
#   bench/scripts/rss-2gib.sh            # from the repository root
#
# Needs the aws cli. Both a single 2 GiB PUT (s3api put-object, streamed
# with one Content-Length) and a multipart upload (s3 cp) are measured.
set -euo pipefail
cd "$(dirname "$0")/../.."
limit_mib=${LIMIT_MIB:-200}
size=${SIZE:-2G}
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cleanup() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/tresor" ./cmd/tresor
"$work/tresor" serve --data-dir "$work/data" --listen "127.0.0.1:$port" \
	--admin-listen "127.0.0.1:$((port + 1))" --log-level warn >"$work/serve.out" 2>&1 &
pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$((port + 1))/health/ready" >/dev/null && break
	sleep 0.1
done

export AWS_SHARED_CREDENTIALS_FILE="$work/data/credentials" AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null
ep="http://127.0.0.1:$port"
head -c "$size" /dev/urandom >"$work/big"
aws --endpoint-url "$ep" s3 mb s3://rss >/dev/null
echo "single PUT of $size"
aws --endpoint-url "$ep" s3api put-object --bucket rss --key single --body "$work/big" >/dev/null
echo "multipart upload of $size"
aws --endpoint-url "$ep" s3 cp --quiet "$work/big" s3://rss/multi
echo "download and compare"
aws --endpoint-url "$ep" s3 cp --quiet s3://rss/single - | cmp - "$work/big"
aws --endpoint-url "$ep" s3 cp --quiet s3://rss/multi - | cmp - "$work/big"

peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
peak_mib=$((peak_kib / 1024))
echo "gateway peak RSS: ${peak_mib} MiB (limit ${limit_mib} MiB)"
[ "$peak_mib" -le "$limit_mib" ] || { echo "FAIL: peak RSS above limit"; exit 1; }
