//go:build !linux

package api

import "net"

// watchHangup is not implemented outside Linux: the context of a hijacked
// connection ends only with Close.
func watchHangup(net.Conn, func()) func() { return func() {} }
