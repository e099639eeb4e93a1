//go:build !linux

// Package memtrim gives back memory an idle process does not need.
package memtrim

// DropCleanText does nothing on this platform.
func DropCleanText() {}
