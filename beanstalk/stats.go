package beanstalk

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/beanspike/beanspike"
)

// statsOps lists the commands counted in stats, in beanstalkd's order.
var statsOps = []op{
	opPut, opPeekJob, opPeekReady, opPeekDelayed, opPeekBuried, opReserve,
	opReserveTimeout, opDelete, opRelease, opUse, opWatch, opIgnore, opBury,
	opKick, opTouch, opStats, opStatsJob, opStatsTube, opListTubes,
	opListTubeUsed, opListTubesWatched, opPauseTube,
}

// statsNames names the cmd-* counters of stats.
var statsNames = map[op]string{
	opPut: "cmd-put", opPeekJob: "cmd-peek", opPeekReady: "cmd-peek-ready",
	opPeekDelayed: "cmd-peek-delayed", opPeekBuried: "cmd-peek-buried",
	opReserve: "cmd-reserve", opReserveTimeout: "cmd-reserve-with-timeout",
	opDelete: "cmd-delete", opRelease: "cmd-release", opUse: "cmd-use",
	opWatch: "cmd-watch", opIgnore: "cmd-ignore", opBury: "cmd-bury",
	opKick: "cmd-kick", opTouch: "cmd-touch", opStats: "cmd-stats",
	opStatsJob: "cmd-stats-job", opStatsTube: "cmd-stats-tube",
	opListTubes: "cmd-list-tubes", opListTubeUsed: "cmd-list-tube-used",
	opListTubesWatched: "cmd-list-tubes-watched", opPauseTube: "cmd-pause-tube",
}

// yaml appends beanstalkd's flat YAML documents.
type yaml []byte

func (y yaml) int(key string, v int64) yaml {
	y = append(y, key...)
	y = append(y, ':', ' ')
	y = strconv.AppendInt(y, v, 10)
	return append(y, '\n')
}

func (y yaml) uint(key string, v uint64) yaml {
	y = append(y, key...)
	y = append(y, ':', ' ')
	y = strconv.AppendUint(y, v, 10)
	return append(y, '\n')
}

func (y yaml) str(key, v string) yaml {
	y = append(y, key...)
	y = append(y, ':', ' ')
	y = append(y, v...)
	return append(y, '\n')
}

// secs truncates d to whole seconds, as beanstalkd's integer division.
func secs(d time.Duration) int64 { return int64(d / time.Second) }

// appendJobStats appends stats-job's document.
func appendJobStats(b []byte, st *beanspike.JobStats) []byte {
	y := yaml(append(b, "---\n"...))
	y = y.uint("id", uint64(st.ID))
	y = y.str("tube", st.Tube)
	y = y.str("state", st.State.String())
	y = y.uint("pri", uint64(st.Priority))
	y = y.int("age", secs(st.Age))
	y = y.int("delay", secs(st.Delay))
	y = y.int("ttr", secs(st.TTR))
	y = y.int("time-left", secs(st.TimeLeft))
	y = y.int("file", 0)
	y = y.uint("reserves", uint64(st.Reserves))
	y = y.uint("timeouts", uint64(st.Timeouts))
	y = y.uint("releases", uint64(st.Releases))
	y = y.uint("buries", uint64(st.Buries))
	y = y.uint("kicks", uint64(st.Kicks))
	return y
}

// appendTubeStats appends stats-tube's document. refs are the server's
// connection counts for the tube.
func appendTubeStats(b []byte, st *beanspike.TubeStats, refs tubeRefs) []byte {
	pause := st.Pause
	if st.PauseLeft <= 0 {
		pause = 0 // beanstalkd forgets a pause once it has ended
	}
	y := yaml(append(b, "---\n"...))
	y = y.str("name", st.Name)
	y = y.int("current-jobs-urgent", int64(st.Urgent))
	y = y.int("current-jobs-ready", int64(st.Ready))
	y = y.int("current-jobs-reserved", int64(st.Reserved))
	y = y.int("current-jobs-delayed", int64(st.Delayed))
	y = y.int("current-jobs-buried", int64(st.Buried))
	y = y.uint("total-jobs", st.TotalJobs)
	y = y.int("current-using", int64(refs.using))
	y = y.int("current-watching", int64(refs.watching))
	y = y.int("current-waiting", int64(refs.waiting))
	y = y.uint("cmd-delete", st.Deletes)
	y = y.uint("cmd-pause-tube", st.Pauses)
	y = y.int("pause", secs(pause))
	y = y.int("pause-time-left", secs(st.PauseLeft))
	return y
}

// appendList appends a YAML list of names.
func appendList(b []byte, names []string) []byte {
	b = append(b, "---\n"...)
	for _, n := range names {
		b = append(b, '-', ' ')
		b = append(b, n...)
		b = append(b, '\n')
	}
	return b
}

// appendStats appends the stats document. Job counts come from the store,
// summed over its tubes; connection and command counts are this server's.
func (s *Server) appendStats(ctx context.Context, b []byte, q beanspike.Queue) ([]byte, error) {
	s.pruneAll()
	stored, err := q.Tubes(ctx)
	if err != nil {
		return nil, err
	}
	var sum beanspike.TubeStats
	for _, t := range stored {
		st, err := q.StatsTube(ctx, t)
		if errors.Is(err, beanspike.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		sum.Urgent += st.Urgent
		sum.Ready += st.Ready
		sum.Reserved += st.Reserved
		sum.Delayed += st.Delayed
		sum.Buried += st.Buried
		sum.TotalJobs += st.TotalJobs
	}
	tubes, err := s.listTubes(ctx, q)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	conns, producers, workers, waiting, total := len(s.conns), s.producers, s.workers, s.waiting, s.totalConns
	s.mu.Unlock()
	utime, stime := rusage()

	y := yaml(append(b, "---\n"...))
	y = y.int("current-jobs-urgent", int64(sum.Urgent))
	y = y.int("current-jobs-ready", int64(sum.Ready))
	y = y.int("current-jobs-reserved", int64(sum.Reserved))
	y = y.int("current-jobs-delayed", int64(sum.Delayed))
	y = y.int("current-jobs-buried", int64(sum.Buried))
	for _, o := range statsOps {
		y = y.uint(statsNames[o], s.cmdCounts[o].Load())
	}
	y = y.uint("job-timeouts", s.timeouts.Load())
	y = y.uint("total-jobs", sum.TotalJobs)
	y = y.int("max-job-size", int64(s.cfg.maxJobSize))
	y = y.int("current-tubes", int64(len(tubes)))
	y = y.int("current-connections", int64(conns))
	y = y.int("current-producers", int64(producers))
	y = y.int("current-workers", int64(workers))
	y = y.int("current-waiting", int64(waiting))
	y = y.uint("total-connections", total)
	y = y.int("pid", int64(os.Getpid()))
	y = y.str("version", strconv.Quote(s.version))
	y = y.str("rusage-utime", fmtRusage(utime))
	y = y.str("rusage-stime", fmtRusage(stime))
	y = y.int("uptime", secs(time.Since(s.started)))
	y = y.int("binlog-oldest-index", 0)
	y = y.int("binlog-current-index", 0)
	y = y.int("binlog-records-migrated", 0)
	y = y.int("binlog-records-written", 0)
	y = y.int("binlog-max-size", 0)
	y = y.str("draining", strconv.FormatBool(s.draining.Load()))
	y = y.str("id", s.id)
	y = y.str("hostname", s.hostname)
	y = y.str("os", runtime.GOOS)
	y = y.str("platform", runtime.GOARCH)
	return y, nil
}

// fmtRusage formats a CPU time as beanstalkd does: seconds.microseconds.
func fmtRusage(d time.Duration) string {
	us := d.Microseconds()
	frac := strconv.FormatInt(us%1e6, 10)
	for len(frac) < 6 {
		frac = "0" + frac
	}
	return strconv.FormatInt(us/1e6, 10) + "." + frac
}
