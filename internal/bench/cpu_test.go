//go:build bench

package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// serverCPU is the CPU time, in seconds, that every process named
// postgres on this machine and their ended children have used (user and
// system, from /proc; 0 where there is no /proc). Read before and after a measurement, it says
// how much of the server's work the measurement caused, which on a shared
// two-core machine tells a slower engine from a busier one: a rate says how
// long a run took, this says what it cost (the benchmarks' PostgreSQL is
// this machine's, and nothing else uses it while they run).
func serverCPU() float64 {
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	ticks := 0.0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // ended meanwhile
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != "postgres" {
			continue
		}
		// After the command come state, ..., utime, stime, cutime and
		// cstime (proc(5), fields 14 to 17 of the whole line). A backend
		// that has ended is counted in the postmaster's cutime and cstime
		// once reaped, and in its own fields until then: a measurement
		// that ends after its connections closed still counts them.
		f := strings.Fields(s[end+1:])
		if len(f) < 15 {
			continue
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseFloat(v, 64)
			ticks += n
		}
	}
	// USER_HZ is 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
	return ticks / 100
}

// settledServerCPU is serverCPU once the server has reaped the backends of
// connections that just closed: a reading taken while one is ending can
// miss its time (a 1M replay once read 0.8 s for about 32), so it reads
// until two readings 100 ms apart agree, for at most two seconds.
func settledServerCPU() float64 {
	last := serverCPU()
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		now := serverCPU()
		if now >= last && now-last < 0.02 {
			return now
		}
		last = now
	}
	return last
}

// ownCPU is the CPU time, in seconds, this process has used (user and
// system): the replay's client and, in the in-process benchmarks, the NATS
// server embedded beside it, the same for the runs a ratio compares.
func ownCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// walMB is how far, in MB, PostgreSQL's WAL has advanced since the
// server began. Read before and after a measurement, it is the WAL the
// measurement wrote: the replay's and the yardsticks' are within a few
// percent of each other (docs/performance.md, eighteenth session), so a
// gap in server CPU between them is not more to log.
func walMB(t *testing.T, ctx context.Context, conn *pgx.Conn) float64 {
	t.Helper()
	var b float64
	if err := conn.QueryRow(ctx, "SELECT (pg_current_wal_lsn() - '0/0')::float8").Scan(&b); err != nil {
		t.Fatalf("read the WAL position: %v", err)
	}
	return b / (1 << 20)
}

// checkpoint makes PostgreSQL write out what earlier measurements left
// dirty before the next one starts its clock. At this server's
// max_wal_size (1 GB) the benchmarks' WAL, a few hundred MB a run, set off
// a checkpoint every 12 to 13 s, each spread over about 11 s: one was
// nearly always running, at a random phase, and its writes went to
// whichever run it overlapped. That moved a plain COPY's server CPU for
// the same rows between 3.6 and 6.5 s, and ratios of two runs by a fifth
// (docs/performance.md, "The replay's start and end"). After a CHECKPOINT
// each run starts from the same clean state and pays only for the
// checkpoints its own WAL sets off.
func checkpoint(t *testing.T, ctx context.Context, dsn string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		t.Fatalf("CHECKPOINT before a measurement (it needs a superuser or pg_checkpoint): %v", err)
	}
}
