package faultnet

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
)

// ownedBy reports whether the client end of the accepted connection c (its
// remote address, a socket on this machine) belongs to process pid. Linux
// only: it finds the socket's inode in /proc/net/tcp (the socket whose local
// address is c's remote one and whose remote address is c's local one), then
// looks for it among the process's open files. A connection whose owner
// cannot be told is not pid's.
func ownedBy(c net.Conn, pid int) bool {
	inode, err := socketInode(c.RemoteAddr(), c.LocalAddr())
	if err != nil {
		return false
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want := "socket:[" + inode + "]"
	for _, e := range ents {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && l == want {
			return true
		}
	}
	return false
}

// socketInode returns the inode of the IPv4 TCP socket bound to local and
// connected to remote, from /proc/net/tcp.
func socketInode(local, remote net.Addr) (string, error) {
	l, ok1 := local.(*net.TCPAddr)
	r, ok2 := remote.(*net.TCPAddr)
	if !ok1 || !ok2 || l.IP.To4() == nil || r.IP.To4() == nil {
		return "", fmt.Errorf("faultnet: not an IPv4 TCP connection: %v → %v", local, remote)
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	wantL, wantR := procAddr(l), procAddr(r)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ..."
		fs := strings.Fields(sc.Text())
		if len(fs) >= 10 && fs[1] == wantL && fs[2] == wantR {
			return fs[9], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("faultnet: no socket %v → %v in /proc/net/tcp", local, remote)
}

// procAddr formats a as /proc/net/tcp does: the IPv4 address as a
// little-endian 32-bit hex number, a colon, the port in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}
