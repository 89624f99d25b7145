package s2s

import "time"

// SetVerifyLinger sets how long a stream opened only for db:verify stays
// after its last verification (tests shorten or lengthen it).
func SetVerifyLinger(s *Service, d time.Duration) { s.lingerNanos.Store(int64(d)) }
