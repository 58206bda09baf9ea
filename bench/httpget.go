// A realistic Go network client for `make bench`'s explore table: N GETs of URL with net/http's
// default client (one kept-alive connection, the netpoller, Go's own resolver), each body read
// to the end. Exits 1 on any error or status other than 200.
//
//	httpget URL N
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
)

func main() {
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpget URL N: N must be a count:", err)
		os.Exit(2)
	}
	for i := 0; i < n; i++ {
		resp, err := http.Get(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "get:", err)
			os.Exit(1)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "body:", resp.Status, err)
			os.Exit(1)
		}
	}
}
