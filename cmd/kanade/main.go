// Command kanade is the operator's CLI for a kanade fleet's results.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/kanadehq/kanade-cli/internal/cli"
	"github.com/kanadehq/kanade-cli/internal/output"
)

// Set by the release build (-ldflags -X main.version=...).
var (
	version string
	commit  string
	date    string
)

func main() { os.Exit(run()) }

// run is main without the exit, so the end-to-end tests run the same code.
func run() int {
	// SIGTERM and SIGHUP (a closed terminal) end a command as Ctrl-C does,
	// so it stops at a commit and removes what it made.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if path := os.Getenv("KANADE_MEMPROFILE"); path != "" {
		runtime.MemProfileRate = 4096 // fine enough to tell a batch's parts apart
		defer heapAtPeak(path)()
	}
	if path := os.Getenv("KANADE_CPUPROFILE"); path != "" {
		defer cpuProfile(path)()
	}
	return cli.Execute(ctx, output.System(), cli.BuildInfo{Version: version, Commit: commit, Date: date}, os.Args[1:])
}
