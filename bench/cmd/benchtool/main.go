// Command benchtool is the helper program of bench/run.sh (`make bench`):
//
//	benchtool authsvc -addr 127.0.0.1:P -n N     a forward_auth service
//	benchtool preload -url http://127.0.0.1:P -n N -c C -deadline D [-span S]
//	benchtool freeports N                        N free loopback ports
//	benchtool sessionid I                        the I-th benchmark session id
//	benchtool report -dir D                      the report's Markdown sections
//	benchtool share -func F [-next N]            a handler's own share of perf samples (stdin)
//
// Every server it starts listens on loopback only.
package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/authsession/caddy-authsession/bench"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "authsvc":
		err = runAuthSvc(args)
	case "preload":
		err = runPreload(args)
	case "freeports":
		err = runFreePorts(args)
	case "sessionid":
		var i int
		if len(args) != 1 {
			usage()
		}
		if _, err = fmt.Sscan(args[0], &i); err == nil {
			fmt.Println(bench.SessionID(i))
		}
	case "report":
		err = runReport(args)
	case "share":
		err = runShare(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool authsvc|preload|freeports|sessionid|report|share [flags]")
	os.Exit(2)
}

// loopbackOnly refuses listen addresses that are not on 127.0.0.1 or ::1:
// the harness must never load anything but this machine.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %v", addr, err)
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not a loopback address", addr)
	}
	return nil
}

// runFreePorts prints n TCP ports that are free on 127.0.0.1, one a line.
// All are held open together while choosing, so they are distinct.
func runFreePorts(args []string) error {
	n := 1
	if len(args) > 0 {
		if _, err := fmt.Sscan(args[0], &n); err != nil || n < 1 || n > 100 {
			return fmt.Errorf("want a count from 1 to 100, got %q", args[0])
		}
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}
