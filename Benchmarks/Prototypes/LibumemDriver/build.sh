#!/bin/sh
# build.sh LIBUMEM_SRC -> ./umem-driver
# LIBUMEM_SRC: the classic portable libumem sources listed in README.md
# (sources.sha256 has their sums); config.h here stands in for autoconf's.
set -e
src=${1:?usage: build.sh LIBUMEM_SRC}
here=$(cd "$(dirname "$0")" && pwd)
b=$(mktemp -d)
cp "$here/config.h" "$b/config.h"
for f in "$src"/*.c; do
  gcc -O2 -fPIC -D_REENTRANT -I"$b" -I"$src" -c "$f" -o "$b/$(basename "$f" .c).o"
done
ar rcs "$b/libumem_bench.a" "$b"/*.o
gcc -O2 -D_REENTRANT -Wall -I"$b" -I"$src" -c "$here/driver.c" -o "$b/driver.o"
gcc -O2 -o "$here/umem-driver" "$b/driver.o" "$b/libumem_bench.a" -lpthread -ldl
rm -rf "$b"
