package auth

import (
	"sync"
	"time"
)

// Throttle counts failed logins per key (a client address or a user name)
// and locks a key out after too many failures in a window. Lockouts double
// with each further failure up to MaxLockout. It is safe for concurrent use
// and bounded in memory.
type Throttle struct {
	MaxFailures int           // failures allowed per Window before lockout
	Window      time.Duration // counting window
	Lockout     time.Duration // first lockout
	MaxLockout  time.Duration // longest lockout
	MaxEntries  int           // tracked keys; stale ones are swept past this
	Now         func() time.Time

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	fails int
	first time.Time
	until time.Time
	last  time.Time
}

// NewThrottle returns a Throttle with airlock's defaults: 5 failures per
// minute, then 30 s doubling up to 15 min, at most 100000 keys.
func NewThrottle() *Throttle {
	return &Throttle{MaxFailures: 5, Window: time.Minute, Lockout: 30 * time.Second,
		MaxLockout: 15 * time.Minute, MaxEntries: 100000, Now: time.Now}
}

// Blocked reports whether any of keys is locked out, and for how long.
func (t *Throttle) Blocked(keys ...string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	var wait time.Duration
	for _, k := range keys {
		if e := t.entries[k]; e != nil && now.Before(e.until) {
			wait = max(wait, e.until.Sub(now))
		}
	}
	return wait, wait > 0
}

// Fail records a failed attempt for each key.
func (t *Throttle) Fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries == nil {
		t.entries = map[string]*throttleEntry{}
	}
	now := t.Now()
	for _, k := range keys {
		e := t.entries[k]
		if e == nil {
			if len(t.entries) >= t.MaxEntries {
				t.sweep(now)
			}
			e = &throttleEntry{first: now}
			t.entries[k] = e
		}
		if now.After(e.until) && ((e.fails < t.MaxFailures && now.Sub(e.first) > t.Window) || now.Sub(e.last) > t.MaxLockout) {
			e.fails, e.first = 0, now
		}
		e.fails++
		e.last = now
		if over := e.fails - t.MaxFailures; over >= 0 {
			d := t.Lockout
			for i := 0; i < over && d < t.MaxLockout; i++ {
				d *= 2
			}
			e.until = now.Add(min(d, t.MaxLockout))
		}
	}
}

// Succeed forgets the failures of key (call it with the user, not the
// address, so one valid account cannot clear an address's record).
func (t *Throttle) Succeed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.entries[key]; e != nil && !t.Now().Before(e.until) {
		delete(t.entries, key)
	}
}

// sweep drops entries that are neither locked nor recent; if the map is
// still full it drops unlocked entries altogether.
func (t *Throttle) sweep(now time.Time) {
	for k, e := range t.entries {
		if now.After(e.until) && now.Sub(e.last) > t.Window {
			delete(t.entries, k)
		}
	}
	if len(t.entries) < t.MaxEntries {
		return
	}
	for k, e := range t.entries {
		if now.After(e.until) {
			delete(t.entries, k)
		}
	}
}
