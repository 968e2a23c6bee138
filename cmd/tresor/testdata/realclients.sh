#!/usr/bin/env bash
# Drives a running `tresor serve` with the aws cli (and boto3 when present),
# the way an ops person would, then checks that a marker written inside
# objects and metadata appears nowhere under the data directory.
#
# Environment: ENDPOINT (http://127.0.0.1:PORT), DATA_DIR, and
# AWS_SHARED_CREDENTIALS_FILE pointing at the credentials serve wrote.
set -euo pipefail
: "${ENDPOINT:?}" "${DATA_DIR:?}" "${AWS_SHARED_CREDENTIALS_FILE:?}"
marker="tresor-marker-$RANDOM$RANDOM-do-not-store"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# aws cli v1 presigns with SigV2 unless told otherwise; tresor speaks SigV4 only.
printf '[default]\nregion = us-east-1\ns3 =\n    signature_version = s3v4\n' >"$work/aws-config"
export AWS_CONFIG_FILE="$work/aws-config" AWS_DEFAULT_REGION=us-east-1
s3() { aws --endpoint-url "$ENDPOINT" s3 "$@"; }
# cp, sync and rm without progress bars.
s3q() { aws --endpoint-url "$ENDPOINT" s3 "$@" --only-show-errors; }
s3api() { aws --endpoint-url "$ENDPOINT" s3api "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "-- $*"; }

step "make bucket"
s3 mb s3://cli-bucket

step "copy a small object up and down"
printf '%s small object body\n' "$marker" > "$work/small.txt"
s3q cp "$work/small.txt" s3://cli-bucket/dir/small.txt
s3q cp s3://cli-bucket/dir/small.txt "$work/small.back"
cmp "$work/small.txt" "$work/small.back" || fail "small object differs"

step "copy a 30 MiB object up and down (multipart)"
{ printf '%s' "$marker"; head -c $((30 << 20)) /dev/urandom; printf '%s' "$marker"; } > "$work/big.bin"
s3q cp "$work/big.bin" s3://cli-bucket/big.bin
s3q cp s3://cli-bucket/big.bin "$work/big.back"
cmp "$work/big.bin" "$work/big.back" || fail "multipart object differs"

step "metadata round trip"
s3api put-object --bucket cli-bucket --key meta.txt --body "$work/small.txt" \
	--metadata "note=$marker" --content-type "text/x-$marker" >/dev/null
got=$(s3api head-object --bucket cli-bucket --key meta.txt --query 'Metadata.note' --output text)
[ "$got" = "$marker" ] || fail "metadata came back as '$got'"
got=$(s3api head-object --bucket cli-bucket --key meta.txt --query 'ContentType' --output text)
[ "$got" = "text/x-$marker" ] || fail "content type came back as '$got'"

step "list shows plaintext sizes"
size=$(s3api head-object --bucket cli-bucket --key big.bin --query ContentLength --output text)
[ "$size" = "$(stat -c %s "$work/big.bin")" ] || fail "head size $size"
aws --endpoint-url "$ENDPOINT" s3 ls s3://cli-bucket/ --recursive | tee "$work/ls.txt"
grep -q " $(stat -c %s "$work/big.bin") big.bin$" "$work/ls.txt" || fail "ls does not show big.bin's plaintext size"
grep -q " $(stat -c %s "$work/small.txt") dir/small.txt$" "$work/ls.txt" || fail "ls does not show dir/small.txt's plaintext size"

step "sync a directory up and back"
mkdir -p "$work/tree/a/b" "$work/back"
for i in 1 2 3; do printf '%s file %s\n' "$marker" "$i" > "$work/tree/a/b/f$i.txt"; done
printf '%s top\n' "$marker" > "$work/tree/top.txt"
s3q sync "$work/tree" s3://cli-bucket/tree
s3q sync s3://cli-bucket/tree "$work/back"
diff -r "$work/tree" "$work/back" || fail "sync round trip differs"

step "presigned URL with curl"
url=$(aws --endpoint-url "$ENDPOINT" s3 presign s3://cli-bucket/dir/small.txt --expires-in 300)
case "$url" in *X-Amz-Signature=*) ;; *) fail "not a SigV4 presigned URL: $url" ;; esac
curl -sSf "$url" -o "$work/presigned.out" || fail "presigned GET failed"
cmp "$work/small.txt" "$work/presigned.out" || fail "presigned GET differs"
code=$(curl -s -o /dev/null -w '%{http_code}' "${url/small.txt/other.txt}")
[ "$code" = 403 ] || fail "tampered presigned URL answered $code"

if python3 -c 'import boto3' 2>/dev/null; then
	step "boto3 round trip (default checksums: aws-chunked with CRC trailers)"
	MARKER="$marker" python3 - <<'PY'
import os, boto3, botocore.config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
                  config=botocore.config.Config(s3={"addressing_style": "path"}))
m = os.environ["MARKER"].encode()
body = m + os.urandom(1 << 20) + m
s3.put_object(Bucket="cli-bucket", Key="boto/obj", Body=body, Metadata={"note": m.decode()})
got = s3.get_object(Bucket="cli-bucket", Key="boto/obj")
assert got["Body"].read() == body, "boto3 body differs"
assert got["Metadata"]["note"] == m.decode(), "boto3 metadata differs"
r = s3.get_object(Bucket="cli-bucket", Key="boto/obj", Range="bytes=10-19")
assert r["Body"].read() == body[10:20], "boto3 range differs"
s3.delete_object(Bucket="cli-bucket", Key="boto/obj")
print("boto3 ok")
PY
else
	step "boto3 not installed: skipped"
fi

ak=$(awk '/aws_access_key_id/ {print $3}' "$AWS_SHARED_CREDENTIALS_FILE")
sk=$(awk '/aws_secret_access_key/ {print $3}' "$AWS_SHARED_CREDENTIALS_FILE")
hostport=${ENDPOINT#http://}

if command -v rclone >/dev/null 2>&1; then
	step "rclone copy, check and copy back (server_side_encryption = aws:kms)"
	cat >"$work/rclone.conf" <<CONF
[tresor]
type = s3
provider = Other
access_key_id = $ak
secret_access_key = $sk
endpoint = $ENDPOINT
region = us-east-1
server_side_encryption = aws:kms
CONF
	# rclone's SDK refuses a custom CA bundle with its own transport.
	rc() { env -u AWS_CA_BUNDLE rclone --config "$work/rclone.conf" "$@"; }
	rc copy "$work/tree" tresor:cli-bucket/rclone
	rc check "$work/tree" tresor:cli-bucket/rclone
	rc copy tresor:cli-bucket/rclone "$work/rclone-back"
	diff -r "$work/tree" "$work/rclone-back" || fail "rclone round trip differs"
else
	step "rclone not installed: skipped"
fi

if command -v s3cmd >/dev/null 2>&1; then
	step "s3cmd put, ls and get"
	cat >"$work/s3cfg" <<CONF
[default]
access_key = $ak
secret_key = $sk
host_base = $hostport
host_bucket = $hostport
use_https = False
signature_v2 = False
bucket_location = us-east-1
CONF
	s3cmd -c "$work/s3cfg" --quiet put "$work/big.bin" s3://cli-bucket/s3cmd/big.bin
	s3cmd -c "$work/s3cfg" ls s3://cli-bucket/s3cmd/ | grep -q " $(stat -c %s "$work/big.bin") " || fail "s3cmd ls size"
	s3cmd -c "$work/s3cfg" --quiet get s3://cli-bucket/s3cmd/big.bin "$work/s3cmd.back"
	cmp "$work/big.bin" "$work/s3cmd.back" || fail "s3cmd round trip differs"
else
	step "s3cmd not installed: skipped"
fi

step "the marker is nowhere under the data directory"
if grep -rqa -- "$marker" "$DATA_DIR"; then
	grep -rla -- "$marker" "$DATA_DIR" >&2
	fail "plaintext marker found under $DATA_DIR"
fi

step "remove objects and the bucket"
s3q rm s3://cli-bucket --recursive
s3 rb s3://cli-bucket
if aws --endpoint-url "$ENDPOINT" s3 ls s3://cli-bucket 2>/dev/null; then fail "bucket still listed"; fi
echo "real clients: all steps passed"
