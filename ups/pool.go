package ups

import (
	"context"
	"errors"
	"sync"
)

// Target is one UPS to read: its name on the server, the server, and how
// to connect to it.
type Target struct {
	// UPS is the UPS's name on the server.
	UPS string
	// Addr is upsd's host:port.
	Addr string
	// Options say how to connect. Targets with the same Addr and equal
	// Options (credentials, STARTTLS, the same *tls.Config, limits) share
	// one connection per poll.
	Options Options
}

// Read is the outcome of reading one Target.
type Read struct {
	Target Target
	// Vars are the UPS's variables when Err is nil.
	Vars VarList
	// Err is the reason the UPS could not be read: the session's failure
	// (connect, STARTTLS, login) or the UPS's own ERR reply.
	Err error
}

// SessionResult is the outcome of one connection of a poll.
type SessionResult struct {
	Addr     string
	Username string
	StartTLS bool
	// Err is set when the connection itself failed (connect, STARTTLS,
	// login), so that none of its UPSes was read.
	Err error
	// Broken is set when the connection broke after it was up (a network
	// or protocol error, not an ERR reply): the UPS being read then and
	// every later one of the session have it as their Err.
	Broken error
	// UPS counts the targets the session served.
	UPS int
}

// Problem is the session's failure, whole (Err) or midway (Broken); nil
// when the connection worked, whatever single UPSes replied.
func (s SessionResult) Problem() error {
	if s.Err != nil {
		return s.Err
	}
	return s.Broken
}

// PollResult is the outcome of one poll of many targets.
type PollResult struct {
	// Reads are in the order of the targets.
	Reads []Read
	// Sessions are in the order of each session's first target.
	Sessions []SessionResult
}

// AllFailed reports whether every connection failed as a whole: no UPS
// could be read from any server. A poll of no targets has not failed.
func (p PollResult) AllFailed() bool {
	for _, s := range p.Sessions {
		if s.Err == nil {
			return false
		}
	}
	return len(p.Sessions) > 0
}

// sessionKey groups targets onto one connection. Options is comparable:
// equal options mean equal credentials, STARTTLS setting and TLS config.
type sessionKey struct {
	addr string
	opts Options
}

// Poll reads every target once: one connection per distinct server and
// Options, the connections in parallel, each bounded by its
// Options.Timeout (dial to LOGOUT) and ctx. Nothing is kept between polls:
// a restarted upsd needs no reconnect logic.
func Poll(ctx context.Context, targets []Target) PollResult {
	var order []sessionKey
	members := map[sessionKey][]int{}
	for i, t := range targets {
		k := sessionKey{addr: t.Addr, opts: t.Options.withDefaults()}
		if _, ok := members[k]; !ok {
			order = append(order, k)
		}
		members[k] = append(members[k], i)
	}
	res := PollResult{Reads: make([]Read, len(targets)), Sessions: make([]SessionResult, len(order))}
	var wg sync.WaitGroup
	for si, k := range order {
		// Each goroutine writes only its own session's slots.
		wg.Go(func() {
			res.Sessions[si] = pollSession(ctx, k, targets, members[k], res.Reads)
		})
	}
	wg.Wait()
	return res
}

// pollSession reads the targets idx over one connection into reads[idx].
func pollSession(ctx context.Context, k sessionKey, targets []Target, idx []int, reads []Read) SessionResult {
	sr := SessionResult{Addr: k.addr, Username: k.opts.Username, StartTLS: k.opts.StartTLS, UPS: len(idx)}
	sctx, cancel := context.WithTimeout(ctx, k.opts.Timeout)
	defer cancel()
	cl, err := Dial(sctx, k.addr, k.opts)
	if err != nil {
		sr.Err = err
		for _, i := range idx {
			reads[i] = Read{Target: targets[i], Err: err}
		}
		return sr
	}
	defer cl.Close()
	for _, i := range idx {
		vl, err := cl.ListVars(sctx, targets[i].UPS)
		reads[i] = Read{Target: targets[i], Vars: vl, Err: err}
		if sr.Broken == nil && breaksConnection(err) {
			sr.Broken = err
		}
	}
	return sr
}

// breaksConnection reports whether err left the connection unusable: any
// error but a plain ERR reply.
func breaksConnection(err error) bool {
	if err == nil {
		return false
	}
	_, isReply := IsServerError(err)
	return !isReply || errors.Is(err, ErrProtocol)
}
