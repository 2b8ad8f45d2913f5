package vnet

// DefaultMaxPending is how many streams a node lets await their preamble
// with the default options.
const DefaultMaxPending = defaultMaxPending

// WithMaxPending sets how many streams the node lets await their
// preamble at a time.
func WithMaxPending(n int) Option {
	return func(nd *Node) error {
		nd.pending.max = n
		return nil
	}
}
