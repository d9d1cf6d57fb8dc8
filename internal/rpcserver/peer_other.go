//go:build !linux

package rpcserver

import (
	"errors"
	"net"
)

// peerCred is only implemented on Linux.
func peerCred(net.Conn) (Peer, error) {
	return Peer{}, errors.New("peer credentials are not supported on this system")
}
