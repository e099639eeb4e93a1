//go:build linux && cgo

package memtrim

// #include <malloc.h>
import "C"

// TrimCHeap gives the C heap's free memory back to the kernel
// (malloc_trim): glibc keeps what C code freed for later mallocs. A cold
// shim (started for its container, not a warm spare) kept ~1.1 MiB of C
// heap from its create for the container's life (3.9 MiB RSS against
// 2.8). Does nothing in a build without cgo.
func TrimCHeap() { C.malloc_trim(0) }
