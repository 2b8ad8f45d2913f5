package bench

import (
	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
)

// Targets returns every target of the comparison, peers first.
func Targets() []Target {
	return []Target{
		Beanstalkd(),
		Memory(),
		BeanstalkFrontEnd(),
		Remote(),
		Aerospike(),
	}
}

// Memory is the in-memory backend, called in process.
func Memory() Target {
	return Target{Name: "memory", Compresses: true, Start: func() (Session, error) {
		first, err := memory.New(memory.WithMaxBodySize(maxJobSize))
		if err != nil {
			return nil, err
		}
		return queueSession{
			newClient: func() (beanspike.Queue, error) { return first.NewClient() },
			close:     first.Close,
		}, nil
	}}
}
