package beanspike

import (
	"fmt"
	"slices"
	"time"
)

// Defaults and limits shared by every implementation.
const (
	// DefaultPriority is the priority of a job put without [WithPriority],
	// as in beanstalkd's clients.
	DefaultPriority uint32 = 1024
	// UrgentPriority: ready jobs with a priority below it count as urgent
	// in [TubeStats].
	UrgentPriority uint32 = 1024
	// DefaultTTR is the time-to-run of a job put without [WithTTR].
	DefaultTTR = time.Minute
	// MinTTR is the shortest time-to-run: shorter ones are raised to it,
	// as beanstalkd raises a TTR of 0 to one second.
	MinTTR = time.Second
	// MaxTubeNameLen is the longest tube name, in bytes, as in beanstalkd.
	MaxTubeNameLen = 200
	// DefaultMaxBodySize is the default limit on a job's body, before
	// compression: 1 MiB.
	DefaultMaxBodySize = 1 << 20
)

// PutOptions are the resolved options of a Put. Implementations get them
// from [NewPutOptions]; users set them with [PutOption] values.
type PutOptions struct {
	// Priority orders ready jobs: lower is more urgent.
	Priority uint32
	// Delay keeps the job delayed for this long before it becomes ready.
	Delay time.Duration
	// TTR is how long a reservation of the job lasts; at least [MinTTR].
	TTR time.Duration
	// Compress asks for the body to be stored compressed when that
	// makes it smaller.
	Compress bool
}

// PutOption sets an option of a Put.
type PutOption func(*PutOptions)

// WithPriority sets the job's priority: lower is more urgent. Defaults to
// [DefaultPriority].
func WithPriority(p uint32) PutOption { return func(o *PutOptions) { o.Priority = p } }

// WithDelay keeps the job delayed for d before it becomes ready. Defaults
// to 0; a negative d makes Put fail with [ErrInvalidArgument].
func WithDelay(d time.Duration) PutOption { return func(o *PutOptions) { o.Delay = d } }

// WithReadyAt keeps the job delayed until t, as WithDelay(time.Until(t))
// does: the delay is taken from the caller's clock when Put is called,
// and a t that has passed makes the job ready at once. With several
// clocks (a remote client and its server, processes sharing an
// Aerospike store) the job becomes ready at t as far as those clocks
// agree. The last of WithDelay and WithReadyAt given wins.
func WithReadyAt(t time.Time) PutOption {
	return func(o *PutOptions) { o.Delay = max(time.Until(t), 0) }
}

// WithTTR sets the job's time-to-run. Defaults to [DefaultTTR]; values
// below [MinTTR] are raised to it, and a negative d makes Put fail with
// [ErrInvalidArgument].
func WithTTR(d time.Duration) PutOption { return func(o *PutOptions) { o.TTR = d } }

// WithCompression stores the body LZ4-compressed when that makes it
// smaller, and raw otherwise (counted in [TubeStats.CompressionSkipped]).
// Reads always return the original body.
func WithCompression() PutOption { return func(o *PutOptions) { o.Compress = true } }

// NewPutOptions applies opts to the defaults and validates the result. It
// returns an error wrapping [ErrInvalidArgument] for negative durations.
func NewPutOptions(opts ...PutOption) (PutOptions, error) {
	o := PutOptions{Priority: DefaultPriority, TTR: DefaultTTR}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.Delay < 0 {
		return o, errorf(ErrInvalidArgument, "negative delay %s", o.Delay)
	}
	if o.TTR < 0 {
		return o, errorf(ErrInvalidArgument, "negative TTR %s", o.TTR)
	}
	if o.TTR < MinTTR {
		o.TTR = MinTTR
	}
	return o, nil
}

// ValidateTube reports whether name is a valid tube name, with beanstalkd's
// rules: 1 to 200 bytes of letters, digits and the characters -+/;.$_()
// not starting with a hyphen. The error wraps [ErrInvalidTube].
func ValidateTube(name string) error {
	if name == "" {
		return errorf(ErrInvalidTube, "empty tube name")
	}
	if len(name) > MaxTubeNameLen {
		return errorf(ErrInvalidTube, "tube name is %d bytes, longer than %d", len(name), MaxTubeNameLen)
	}
	if name[0] == '-' {
		return errorf(ErrInvalidTube, "tube name %q starts with a hyphen", name)
	}
	for i := 0; i < len(name); i++ {
		if !TubeNameByte(name[i]) {
			return errorf(ErrInvalidTube, "tube name %q has invalid byte %q at %d", name, name[i], i)
		}
	}
	return nil
}

// TubeNameByte reports whether c may appear in a tube name: a letter, a
// digit or one of -+/;.$_() (see [ValidateTube]).
func TubeNameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '+', '/', ';', '.', '$', '_', '(', ')':
		return true
	}
	return false
}

// ValidateBody reports whether a body of n bytes fits under max bytes.
// The error wraps [ErrJobTooBig].
func ValidateBody(n, max int) error {
	if n > max {
		return errorf(ErrJobTooBig, "body is %d bytes, more than the limit of %d", n, max)
	}
	return nil
}

// ValidateID reports whether id can name a job. The error wraps
// [ErrInvalidArgument].
func ValidateID(id ID) error {
	if id == 0 {
		return errorf(ErrInvalidArgument, "job ID 0")
	}
	return nil
}

// ValidateDelay reports whether d is a valid delay or pause. The error
// wraps [ErrInvalidArgument].
func ValidateDelay(d time.Duration) error {
	if d < 0 {
		return errorf(ErrInvalidArgument, "negative duration %s", d)
	}
	return nil
}

// NormalizeTubes normalises the tube list of a Reserve: DefaultTube when
// empty, each name validated, duplicates removed, order kept. It takes
// time linear in the length of the list.
func NormalizeTubes(tubes []string) ([]string, error) {
	if len(tubes) == 0 {
		return []string{DefaultTube}, nil
	}
	out := make([]string, 0, len(tubes))
	var seen map[string]struct{} // for long lists, where a scan of out is slow
	if len(tubes) > 16 {
		seen = make(map[string]struct{}, len(tubes))
	}
	for _, t := range tubes {
		if err := ValidateTube(t); err != nil {
			return nil, err
		}
		if seen == nil {
			if slices.Contains(out, t) {
				continue
			}
		} else {
			if _, dup := seen[t]; dup {
				continue
			}
			seen[t] = struct{}{}
		}
		out = append(out, t)
	}
	return out, nil
}

// errorf wraps sentinel with a formatted detail.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
