#!/bin/sh
# build.sh IMPL NAME [extra cflags] -> bin/NAME-nolock and bin/NAME-lock (gcc -O2)
#   ./build.sh bg.h bg4f -mavx2 -DGROW_DIV=4u     the best exact design
#   ./build.sh trivial.h trivial                  the loop-and-lock floor (not exact)
set -e
cd "$(dirname "$0")"; mkdir -p bin
impl=$1; name=$2; shift 2
gcc -O2 -Wall -DALLOC_IMPL="\"$impl\"" "$@" -o bin/$name-nolock proto_driver.c
gcc -O2 -Wall -DUSE_LOCK -DALLOC_IMPL="\"$impl\"" "$@" -o bin/$name-lock proto_driver.c
