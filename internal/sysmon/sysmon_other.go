//go:build !linux

package sysmon

// Slacken does nothing on this platform.
func Slacken(ns int64) {}
