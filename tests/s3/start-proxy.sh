#!/bin/bash
# Start sigcheck-proxy.py in front of the s3rver started in DIR.  Writes
# DIR/proxy.port, DIR/proxy.pid, logs requests to DIR/proxy.log; prints the
# port.  Writing "503 2" to DIR/proxy.faults fails the next two requests.
# usage: start-proxy.sh DIR
set -eu
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
upstream=127.0.0.1:$(cat "$dir/s3rver.port")
rm -f "$dir/proxy.port"
/usr/bin/python3 "$here/sigcheck-proxy.py" --upstream "$upstream" \
	--port-file "$dir/proxy.port" --log "$dir/proxy.log" --fault-file "$dir/proxy.faults" \
	>>"$dir/proxy.err" 2>&1 &
echo $! >"$dir/proxy.pid"
for _ in $(seq 1 100); do
	if [ -s "$dir/proxy.port" ]; then
		cat "$dir/proxy.port"
		exit 0
	fi
	sleep 0.1
done
echo "start-proxy: the proxy did not start; see $dir/proxy.err" >&2
exit 1
