// The Go counterpart of pingpong.c for `make bench`: a Write and a Read of 16 bytes per round on
// a unix socketpair, through Go's net package (non-blocking fds under the netpoller, as every Go
// network program runs). Go never calls libc, so only the seccomp backend reaches it.
// Prints nanoseconds per call (two calls per round: the write finds room and the read finds the
// bytes just written, so neither waits in the netpoller).
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

func conn(fd int, name string) net.Conn {
	f := os.NewFile(uintptr(fd), name)
	c, err := net.FileConn(f) // a dup of fd, registered with the netpoller
	if err != nil {
		panic(err)
	}
	f.Close()
	return c
}

func main() {
	iter := 1000000
	if len(os.Args) > 1 {
		iter, _ = strconv.Atoi(os.Args[1])
	}
	sv, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		panic(err)
	}
	a, b := conn(sv[0], "a"), conn(sv[1], "b")
	buf := make([]byte, 16)
	start := time.Now()
	for i := 0; i < iter; i++ {
		if n, err := a.Write(buf); n != len(buf) || err != nil {
			fmt.Fprintln(os.Stderr, "write:", n, err)
			os.Exit(2)
		}
		if n, err := b.Read(buf); n != len(buf) || err != nil {
			fmt.Fprintln(os.Stderr, "read:", n, err)
			os.Exit(3)
		}
	}
	fmt.Printf("%.1f\n", float64(time.Since(start).Nanoseconds())/float64(2*iter))
}
