#!/bin/bash
# Start s3rver (npm, 3.7.x) on 127.0.0.1 and a free port, path-style only,
# with one bucket, its data in DIR/data.  Writes DIR/s3rver.port and
# DIR/s3rver.pid and prints the port.  With PORT given, reuses that port (to
# bring a killed server back on the same data).  With S3RVER_CERT and
# S3RVER_KEY set (PEM files), serves HTTPS instead.
#
# usage: start-s3rver.sh DIR [BUCKET] [PORT]
set -eu
dir=$1
bucket=${2:-pgkeep}
port=${3:-}
bin=$(command -v s3rver) || { echo "start-s3rver: s3rver not found: npm install -g s3rver@3.7.1" >&2; exit 1; }
mkdir -p "$dir/data"
scheme=http
tls=()
if [ -n "${S3RVER_CERT:-}" ]; then
	scheme=https
	tls=(--cert "$S3RVER_CERT" --key "$S3RVER_KEY")
fi

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

for attempt in 1 2 3; do
	p=${port:-$(free_port)}
	# --openssl-legacy-provider: s3rver makes continuation tokens with DES,
	# which Node 17+ refuses without it (listing past one page answers 500).
	node --openssl-legacy-provider "$bin" -d "$dir/data" -a 127.0.0.1 -p "$p" \
		--no-vhost-buckets --configure-bucket "$bucket" "${tls[@]}" \
		>>"$dir/s3rver.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do
		if curl -s -k -o /dev/null "$scheme://127.0.0.1:$p/$bucket" 2>/dev/null; then
			echo "$p" >"$dir/s3rver.port"
			echo "$pid" >"$dir/s3rver.pid"
			echo "$p"
			exit 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -z "$port" ] || sleep 1
done
echo "start-s3rver: s3rver did not start; see $dir/s3rver.log" >&2
tail -5 "$dir/s3rver.log" >&2
exit 1
