package auth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Errors returned by Authenticator.Authenticate.
var (
	ErrNoCredentials  = errors.New("authentication required")
	ErrBadCredentials = errors.New("invalid credentials")
)

// ThrottledError is returned while a client address or user is locked out.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins; retry after %d s", RetryAfterSeconds(e.RetryAfter))
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1, for a
// Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Identity says who made a request.
type Identity struct {
	User   string // htpasswd user name, or "key:<ID>" for an API key
	Method string // "basic" or "bearer"
}

// Authenticator checks basic credentials against Users and bearer tokens
// against Keys (either may be nil), throttling failures with Throttle.
type Authenticator struct {
	Users    *Htpasswd
	Keys     *APIKeys
	Throttle *Throttle
}

// Authenticate identifies the caller of r. It returns ErrNoCredentials,
// ErrBadCredentials (the same error for unknown users, wrong passwords and
// unknown keys) or a *ThrottledError.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	addrKey := "addr:" + ClientHost(r.RemoteAddr)
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case h == "":
		return Identity{}, ErrNoCredentials
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return a.fail(addrKey)
		}
		userKey := "user:" + user
		if wait, blocked := a.Throttle.Blocked(addrKey, userKey); blocked {
			return Identity{}, &ThrottledError{wait}
		}
		if a.Users == nil || !a.Users.Check(user, pass) {
			return a.fail(addrKey, userKey)
		}
		a.Throttle.Succeed(userKey)
		return Identity{User: user, Method: "basic"}, nil
	case strings.EqualFold(scheme, "Bearer"):
		id, wellFormed := parseKeyID(cred)
		keyKey := "key:" + id
		if wait, blocked := a.Throttle.Blocked(addrKey, keyKey); blocked {
			return Identity{}, &ThrottledError{wait}
		}
		if a.Keys == nil || !wellFormed {
			return a.fail(addrKey)
		}
		id, ok := a.Keys.Check(cred)
		if !ok {
			return a.fail(addrKey, keyKey)
		}
		a.Throttle.Succeed(keyKey)
		return Identity{User: "key:" + id, Method: "bearer"}, nil
	default:
		return a.fail(addrKey)
	}
}

func (a *Authenticator) fail(keys ...string) (Identity, error) {
	if wait, blocked := a.Throttle.Blocked(keys...); blocked {
		return Identity{}, &ThrottledError{wait}
	}
	a.Throttle.Fail(keys...)
	return Identity{}, ErrBadCredentials
}

// ReloadIfChanged reloads the htpasswd and key files that changed.
func (a *Authenticator) ReloadIfChanged() error {
	var errs []error
	if a.Users != nil {
		if _, err := a.Users.ReloadIfChanged(); err != nil {
			errs = append(errs, err)
		}
	}
	if a.Keys != nil {
		if _, err := a.Keys.ReloadIfChanged(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reload re-reads both files unconditionally (SIGHUP).
func (a *Authenticator) Reload() error {
	var errs []error
	if a.Users != nil {
		errs = append(errs, a.Users.Reload())
	}
	if a.Keys != nil {
		errs = append(errs, a.Keys.Reload())
	}
	return errors.Join(errs...)
}

// ClientHost returns the host part of a remote address.
func ClientHost(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}
