#!/bin/bash
# Stop what start-s3rver.sh and start-proxy.sh started in DIR (by pid file).
# usage: stop-s3rver.sh DIR
dir=$1
for f in "$dir"/proxy.pid "$dir"/s3rver.pid; do
	[ -f "$f" ] || continue
	pid=$(cat "$f")
	kill "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	rm -f "$f"
done
exit 0
