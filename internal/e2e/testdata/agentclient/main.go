// Command agentclient asks the SSH agent at $SSH_AUTH_SOCK for its
// identities (SSH2_AGENTC_REQUEST_IDENTITIES) and prints the answer's
// type, key count and first key's comment. Built static by the e2e
// tests and run inside a build's RUN step.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 0, 0, 1, 11}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c, body); err != nil || len(body) < 5 {
		fmt.Fprintln(os.Stderr, "short answer", err)
		os.Exit(1)
	}
	n := binary.BigEndian.Uint32(body[1:5])
	comment := ""
	if rest := body[5:]; n > 0 && len(rest) >= 4 {
		l := binary.BigEndian.Uint32(rest)
		if rest = rest[4:]; uint32(len(rest)) >= l+4 {
			rest = rest[l:]
			cl := binary.BigEndian.Uint32(rest)
			if rest = rest[4:]; uint32(len(rest)) >= cl {
				comment = string(rest[:cl])
			}
		}
	}
	fmt.Printf("type=%d keys=%d comment=%s\n", body[0], n, comment)
}
