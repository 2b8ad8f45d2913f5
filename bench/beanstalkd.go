package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/beanstalkd/go-beanstalk"
)

// Beanstalkd is the target that runs a real beanstalkd on loopback and
// talks to it with github.com/beanstalkd/go-beanstalk. Start returns an
// error wrapping ErrMissing when the beanstalkd binary is not installed.
func Beanstalkd() Target {
	return Target{Name: "beanstalkd", Start: startBeanstalkd}
}

// maxJobSize is the job size limit given to every beanstalk-protocol
// server, large enough for the 64 KiB workloads.
const maxJobSize = 1 << 20

func startBeanstalkd() (Session, error) {
	path, err := exec.LookPath("beanstalkd")
	if err != nil {
		return nil, fmt.Errorf("%w: beanstalkd is not installed (apt-get install beanstalkd)", ErrMissing)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-z", strconv.Itoa(maxJobSize))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start beanstalkd: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &beanstalkSession{addr: addr, pid: cmd.Process.Pid, stop: func() error {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil
	}}
	if err := waitDial(addr); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// beanstalkSession is a Session of any server speaking beanstalkd's
// protocol.
type beanstalkSession struct {
	addr string
	pid  int // of the server process, when it is one
	stop func() error
}

func (s *beanstalkSession) NewClient() (Client, error) {
	c, err := beanstalk.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &beanstalkClient{conn: c, tubes: map[string]*beanstalk.Tube{}, sets: map[string]*beanstalk.TubeSet{}}, nil
}

func (s *beanstalkSession) Close() error { return s.stop() }

type beanstalkClient struct {
	conn  *beanstalk.Conn
	tubes map[string]*beanstalk.Tube
	sets  map[string]*beanstalk.TubeSet
}

func (c *beanstalkClient) Put(_ context.Context, tube string, body []byte, _ bool) error {
	t := c.tubes[tube]
	if t == nil {
		t = beanstalk.NewTube(c.conn, tube)
		c.tubes[tube] = t
	}
	_, err := t.Put(body, 1024, 0, time.Minute)
	return err
}

func (c *beanstalkClient) ReserveDelete(_ context.Context, tube string) (int, error) {
	ts := c.sets[tube]
	if ts == nil {
		ts = beanstalk.NewTubeSet(c.conn, tube)
		c.sets[tube] = ts
	}
	id, body, err := ts.Reserve(10 * time.Second)
	if err != nil {
		return 0, err
	}
	return len(body), c.conn.Delete(id)
}

func (c *beanstalkClient) Close() error { return c.conn.Close() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitDial(addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer: %w", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
