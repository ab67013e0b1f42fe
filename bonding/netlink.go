package bonding

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WatchOptions tunes WatchLinks.
type WatchOptions struct {
	Logger *slog.Logger
	// Resubscribe is the wait before subscribing again after the netlink
	// socket failed (ENOBUFS on an event storm); default 1s.
	Resubscribe time.Duration
	// Namespace, when set, is the network namespace to watch; default the
	// caller's.
	Namespace *netns.NsHandle
}

// WatchLinks subscribes to rtnetlink link events (RTNLGRP_LINK) and calls
// notify whenever a bond or a bond slave changes: carrier, operstate,
// enslave/release, creation or removal. The kernel sends RTM_NEWLINK for a
// slave as soon as the MII monitor changes its link state, so notify runs
// within milliseconds of the bond noticing a dead link; the periodic poll
// stays as the safety net.
//
// notify must not block (use collectors.Notify on a buffered channel). It
// is also called once after every (re)subscription, because events may
// have been lost in between. WatchLinks returns nil when ctx ends, and an
// error only when the first subscription fails (no netlink, no
// permission).
func WatchLinks(ctx context.Context, notify func(), opts WatchOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wait := opts.Resubscribe
	if wait <= 0 {
		wait = time.Second
	}
	w := linkFilter{watched: map[int]bool{}}
	first := true
	for {
		updates := make(chan netlink.LinkUpdate, 64)
		done := make(chan struct{})
		errs := make(chan error, 1)
		err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
			ErrorCallback: func(err error) {
				select {
				case errs <- err:
				default:
				}
			},
			// Listing existing links seeds the set of bond and slave
			// ifindexes, so a later release (which carries no master) is
			// still recognised.
			ListExisting: true,
			Namespace:    opts.Namespace,
		})
		if err != nil {
			close(done)
			if first {
				return fmt.Errorf("subscribe to rtnetlink link events: %w", err)
			}
			log.Warn("resubscribe to rtnetlink link events failed", "err", err)
		} else {
			first = false
			notify()
			lost := w.run(ctx, updates, notify)
			close(done)
			for range updates { // drain until the receive goroutine exits
			}
			if !lost {
				return nil
			}
			select {
			case err := <-errs:
				log.Warn("rtnetlink link subscription lost, resubscribing", "err", err)
			default:
				log.Warn("rtnetlink link subscription lost, resubscribing")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// linkFilter decides which link events concern bonding.
type linkFilter struct {
	watched map[int]bool // ifindexes of bonds and slaves seen so far
}

// run consumes updates until ctx ends (returns false) or the subscription
// closes the channel (returns true).
func (w *linkFilter) run(ctx context.Context, updates <-chan netlink.LinkUpdate, notify func()) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case u, ok := <-updates:
			if !ok {
				return true
			}
			if w.relevant(u) {
				notify()
			}
		}
	}
}

func (w *linkFilter) relevant(u netlink.LinkUpdate) bool {
	if u.Link == nil {
		return false
	}
	a := u.Link.Attrs()
	idx := int(u.Index)
	isBond := u.Link.Type() == "bond"
	_, isBondSlave := a.Slave.(*netlink.BondSlave)
	enslaved := isBondSlave || a.MasterIndex != 0 && w.watched[a.MasterIndex]
	was := w.watched[idx]
	switch {
	case u.Header.Type == unix.RTM_DELLINK:
		delete(w.watched, idx)
	case isBond || enslaved:
		w.watched[idx] = true
	default:
		// A released slave: it was watched and no longer has a master.
		delete(w.watched, idx)
	}
	return isBond || enslaved || was
}
