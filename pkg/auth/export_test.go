package auth

import "time"

// SetStoreClock replaces the store's clock (tests of the refresh interval).
func SetStoreClock(s *SecretStore, now func() time.Time) { s.now = now }
