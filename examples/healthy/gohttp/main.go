// Command gohttp is a plain net/http server: the Go runtime schedules its
// goroutines on a few threads and waits for connections in its netpoller.
// Each request hashes a small buffer and sleeps 2 ms, as a handler waiting on
// a fast backend would.
//
//	gohttp -addr 127.0.0.1:20086
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:20086", "listen address")
	flag.Parse()
	buf := make([]byte, 4096)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.Sum256(buf)
		time.Sleep(2 * time.Millisecond)
		fmt.Fprintf(w, "%x\n", sum[:4])
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
