package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/conformance"
)

// The suite must fail on broken implementations. TestMutants runs parts of
// it, in a child process, against wrappers of the memory backend that each
// break one promise of the contract, and checks that the expected subtests
// fail.

const mutantEnv = "BEANSPIKE_CONFORMANCE_MUTANT"

// mutantCase is one broken implementation and the subtests that must
// catch it.
type mutantCase struct {
	name  string
	catch []string
	want  string // in the output, if set
}

var mutantCases = []mutantCase{
	{"touch-not-owned", []string{"Ownership", "BadInput", "ConcurrentHistory"}, ""},
	{"double-delete", []string{"BadInput", "ConcurrentHistory"}, ""},
	{"steal", []string{"ConcurrentHistory"}, ""},
	{"lose-on-release", []string{"ConcurrentHistory"}, ""},
	{"wrapped-ctx-error", []string{"ReserveCancel", "ReservePollWithDoneContext"}, ""},
	{"lax-tubes", []string{"BadInput"}, ""},
	{"close-noop", []string{"Close", "CloseWakesReserve"}, ""},
	{"ttr-ignored", []string{"MinTTR"}, ""},
	{"peek-aliases", []string{"BodyOwnership"}, ""},
	{"truncate-body", []string{"BodyLimit", "BadInput"}, ""},
	{"late-delay", []string{"Delay"}, ""},
	{"early-delay", []string{"Delay"}, ""},
	{"hang", []string{"ReserveWokenByPut"}, "watchdog: subtest still running"},
}

func TestMutants(t *testing.T) {
	if name := os.Getenv(mutantEnv); name != "" {
		// The child: run the suite against the broken implementation.
		conformance.Run(t, mutantHarness(name))
		return
	}
	for _, m := range mutantCases {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutants$/^("+strings.Join(m.catch, "|")+")$", "-test.short", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed an implementation broken by %q:\n%s", m.name, out)
			}
			if !strings.Contains(string(out), m.want) {
				t.Errorf("the output lacks %q:\n%s", m.want, out)
			}
			for _, sub := range m.catch {
				if !strings.Contains(string(out), "--- FAIL: TestMutants/"+sub+" ") {
					t.Errorf("subtest %s did not catch %q:\n%s", sub, m.name, out)
				}
			}
		})
	}
}

func mutantHarness(name string) conformance.Harness {
	caps := conformance.Capabilities{ExactWaiting: true}
	if name == "hang" {
		caps.Watchdog = 2 * time.Second
	}
	return conformance.Harness{
		NewStore: func(t *testing.T) conformance.Store {
			q, err := memory.New()
			if err != nil {
				t.Fatalf("memory.New: %v", err)
			}
			t.Cleanup(func() { _ = q.Close() })
			return &mutantStore{root: q, kind: name, held: make(map[beanspike.ID]*mutant)}
		},
		Capabilities: caps,
	}
}

type mutantStore struct {
	root *memory.Queue
	kind string

	mu   sync.Mutex
	held map[beanspike.ID]*mutant // for "steal": who reserved what
	rng  *rand.Rand
}

func (s *mutantStore) NewClient(t *testing.T) beanspike.Queue {
	q, err := s.root.NewClient()
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return &mutant{Queue: q, s: s, peeked: make(map[beanspike.ID]*beanspike.Job), closed: make(chan struct{})}
}

func (s *mutantStore) chance(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rng == nil {
		s.rng = rand.New(rand.NewPCG(1, 2))
	}
	return s.rng.IntN(n) == 0
}

// mutant wraps a memory client and breaks it as its store's kind says.
// It does not implement beanspike.Batcher.
type mutant struct {
	beanspike.Queue
	s *mutantStore

	mu     sync.Mutex
	peeked map[beanspike.ID]*beanspike.Job
	once   sync.Once
	closed chan struct{} // closed by Close, for "hang"
}

func (m *mutant) Put(ctx context.Context, tube string, body []byte, opts ...beanspike.PutOption) (beanspike.ID, error) {
	o, _ := beanspike.NewPutOptions(opts...)
	switch m.s.kind {
	case "ttr-ignored":
		opts = append(opts, beanspike.WithTTR(beanspike.DefaultTTR))
	case "truncate-body":
		if len(body) > beanspike.DefaultMaxBodySize {
			body = body[:beanspike.DefaultMaxBodySize]
		}
	case "late-delay":
		if o.Delay > 0 {
			opts = append(opts, beanspike.WithDelay(o.Delay*3/2))
		}
	case "early-delay":
		if o.Delay > 0 {
			opts = append(opts, beanspike.WithDelay(o.Delay/2))
		}
	}
	return m.Queue.Put(ctx, tube, body, opts...)
}

func (m *mutant) Reserve(ctx context.Context, tubes ...string) (*beanspike.Job, error) {
	switch m.s.kind {
	case "hang": // deaf to ctx and to Puts; only Close ends it
		<-m.closed
		return nil, beanspike.ErrClosed
	case "lax-tubes":
		var ok []string
		for _, tube := range tubes {
			if beanspike.ValidateTube(tube) == nil {
				ok = append(ok, tube)
			}
		}
		tubes = ok
	case "steal":
		if m.s.chance(3) {
			m.s.mu.Lock()
			var victim beanspike.ID
			for id, holder := range m.s.held {
				if holder != m {
					victim = id
					break
				}
			}
			m.s.mu.Unlock()
			if victim != 0 {
				if j, err := m.Queue.Peek(ctx, victim); err == nil {
					return j, nil
				}
			}
		}
	}
	j, err := m.Queue.Reserve(ctx, tubes...)
	if err != nil && m.s.kind == "wrapped-ctx-error" && ctx.Err() != nil {
		return nil, fmt.Errorf("reserve: %w", err)
	}
	if err == nil && m.s.kind == "steal" {
		m.s.mu.Lock()
		m.s.held[j.ID] = m
		m.s.mu.Unlock()
	}
	return j, err
}

func (m *mutant) Delete(ctx context.Context, id beanspike.ID) error {
	err := m.Queue.Delete(ctx, id)
	if m.s.kind == "double-delete" && errors.Is(err, beanspike.ErrNotFound) {
		return nil
	}
	return err
}

func (m *mutant) Release(ctx context.Context, id beanspike.ID, pri uint32, delay time.Duration) error {
	if m.s.kind == "lose-on-release" && m.s.chance(4) {
		if _, err := m.Queue.StatsJob(ctx, id); err == nil {
			if err := m.Queue.Delete(ctx, id); err == nil {
				return nil
			}
		}
	}
	return m.Queue.Release(ctx, id, pri, delay)
}

func (m *mutant) Touch(ctx context.Context, id beanspike.ID) error {
	err := m.Queue.Touch(ctx, id)
	if m.s.kind == "touch-not-owned" && errors.Is(err, beanspike.ErrNotReserved) {
		return nil
	}
	return err
}

func (m *mutant) Peek(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	if m.s.kind != "peek-aliases" {
		return m.Queue.Peek(ctx, id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if j, ok := m.peeked[id]; ok {
		c := *j
		return &c, nil
	}
	j, err := m.Queue.Peek(ctx, id)
	if err == nil {
		m.peeked[id] = j
	}
	return j, err
}

func (m *mutant) Close() error {
	if m.s.kind == "close-noop" {
		return nil
	}
	m.once.Do(func() { close(m.closed) })
	return m.Queue.Close()
}
