// First byte through Go's net.Dial: the standard library's Happy Eyeballs
// (RFC 6555 "fast fallback", 300 ms), with its resolver's RFC 6724 sort.
// Used by first-byte.sh as the Go peer; it sends one HTTP/1.0 request and
// prints the reply.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	conn, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	reply, _ := io.ReadAll(conn)
	os.Stdout.Write(reply)
}
