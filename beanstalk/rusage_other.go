//go:build !unix

package beanstalk

import "time"

// rusage reports zero CPU time where the platform does not tell it.
func rusage() (user, system time.Duration) { return 0, 0 }
