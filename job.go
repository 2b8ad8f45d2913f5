package beanspike

import (
	"fmt"
	"strconv"
	"time"
)

// ID identifies a job. IDs are unique across all tubes of a store and are
// never zero.
type ID uint64

// String returns the decimal form of id.
func (id ID) String() string { return strconv.FormatUint(uint64(id), 10) }

// State is where a job is in its life cycle.
type State uint8

// The job states, as in beanstalkd.
const (
	// Ready jobs wait to be reserved.
	Ready State = iota + 1
	// Delayed jobs become ready when their delay has passed.
	Delayed
	// Reserved jobs are held by one client until it deletes, releases or
	// buries them, or their time-to-run lapses.
	Reserved
	// Buried jobs wait, untouched, until they are kicked.
	Buried
)

// String returns the state's beanstalkd name: "ready", "delayed",
// "reserved" or "buried".
func (s State) String() string {
	switch s {
	case Ready:
		return "ready"
	case Delayed:
		return "delayed"
	case Reserved:
		return "reserved"
	case Buried:
		return "buried"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Job is a job as returned by Reserve and the Peek calls. Body is the
// caller's to keep: implementations never reuse it.
type Job struct {
	// ID identifies the job.
	ID ID
	// Tube is the tube the job lives in.
	Tube string
	// Body is the job's payload, decompressed.
	Body []byte
	// Priority orders ready jobs: lower is more urgent.
	Priority uint32
	// TTR is how long a reservation lasts before the job returns to ready.
	TTR time.Duration
	// Reserves counts how many times the job has been reserved, including
	// the reservation that returned it. Workers use it to count attempts.
	Reserves uint32
}

// String returns a short description of j, without its body.
func (j *Job) String() string {
	if j == nil {
		return "<nil job>"
	}
	return fmt.Sprintf("job %d in %q (pri %d, ttr %s, %d bytes)", j.ID, j.Tube, j.Priority, j.TTR, len(j.Body))
}

// JobStats describes one job, as beanstalkd's stats-job does.
type JobStats struct {
	ID    ID
	Tube  string
	State State
	// Priority is the job's current priority.
	Priority uint32
	// Age is the time since the job was put.
	Age time.Duration
	// Delay is the delay the job was last put or released with.
	Delay time.Duration
	// TTR is the job's time-to-run.
	TTR time.Duration
	// TimeLeft is, for a reserved job, the time until its reservation
	// lapses; for a delayed job, the time until it becomes ready; zero
	// otherwise.
	TimeLeft time.Duration
	// Reserves, Timeouts, Releases, Buries and Kicks count the job's
	// reservations, lapsed reservations, releases, buries and kicks.
	Reserves, Timeouts, Releases, Buries, Kicks uint32
	// BuryReason is the reason given to the last Bury, if any.
	BuryReason string
	// Size is the body's length; StoredSize the length as stored, which
	// differs when the body is compressed.
	Size, StoredSize int
	// Compressed tells whether the body is stored compressed.
	Compressed bool
}

// TubeStats describes one tube, as beanstalkd's stats-tube does.
type TubeStats struct {
	Name string
	// Urgent counts ready jobs with priority below [UrgentPriority].
	Urgent int
	// Ready, Reserved, Delayed and Buried count the tube's jobs by state.
	Ready, Reserved, Delayed, Buried int
	// TotalJobs counts the jobs ever put into the tube (since it was
	// last deleted).
	TotalJobs uint64
	// Waiting counts the Reserve calls blocked on this tube. A
	// distributed implementation may count only the waiters it can see
	// (its own process); its documentation says so.
	Waiting int
	// Deletes counts the Delete calls that removed a job of this tube.
	Deletes uint64
	// Pauses counts PauseTube calls on the tube.
	Pauses uint64
	// Pause is the duration of the current or last pause; PauseLeft the
	// time until the tube is unpaused (zero when it is not paused).
	Pause, PauseLeft time.Duration
	// Compressed counts puts whose body was stored compressed;
	// CompressionSkipped counts puts that asked for compression but
	// stored the body raw because compression did not shrink it.
	Compressed, CompressionSkipped uint64
}
