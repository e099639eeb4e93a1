//go:build !linux || !cgo

package memtrim

// TrimCHeap does nothing without cgo: there is no C heap.
func TrimCHeap() {}
