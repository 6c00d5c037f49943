#!/bin/sh
# Generate the configure script and Makefile.in from the sources.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf --install --force
# automake's TAP driver is not copied by --add-missing; take the system's.
cp -f "$(automake --print-libdir)/tap-driver.sh" build-aux/tap-driver.sh
