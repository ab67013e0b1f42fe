package bonding

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func update(typ uint16, link netlink.Link) netlink.LinkUpdate {
	u := netlink.LinkUpdate{Link: link}
	u.Header.Type = typ
	u.Index = int32(link.Attrs().Index)
	return u
}

func TestLinkFilter(t *testing.T) {
	bond := &netlink.Bond{LinkAttrs: netlink.LinkAttrs{Index: 10, Name: "bond0"}}
	slave := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 11, Name: "eth0", MasterIndex: 10, Slave: &netlink.BondSlave{MiiStatus: netlink.BondLinkUp}}}
	released := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 11, Name: "eth0"}}
	other := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 20, Name: "veth0"}}
	bridgePort := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 21, Name: "veth1", MasterIndex: 30}}
	// A slave whose IFLA_LINKINFO lacked slave data, known by its master.
	bareSlave := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 12, Name: "eth1", MasterIndex: 10}}

	w := linkFilter{watched: map[int]bool{}}
	steps := []struct {
		name string
		u    netlink.LinkUpdate
		want bool
	}{
		{"unrelated veth", update(unix.RTM_NEWLINK, other), false},
		{"bridge port", update(unix.RTM_NEWLINK, bridgePort), false},
		{"bond appears", update(unix.RTM_NEWLINK, bond), true},
		{"slave link change", update(unix.RTM_NEWLINK, slave), true},
		{"slave without slave data, master is a bond", update(unix.RTM_NEWLINK, bareSlave), true},
		{"slave released: no master any more", update(unix.RTM_NEWLINK, released), true},
		{"released NIC changes again", update(unix.RTM_NEWLINK, released), false},
		{"bond deleted", update(unix.RTM_DELLINK, bond), true},
		{"bond index reused by a veth", update(unix.RTM_NEWLINK, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 10}}), false},
		{"nil link", netlink.LinkUpdate{}, false},
	}
	for _, s := range steps {
		if got := w.relevant(s.u); got != s.want {
			t.Errorf("%s: relevant = %v, want %v", s.name, got, s.want)
		}
	}
}

// TestWatchLinksLifecycle subscribes for real, in a network namespace of
// its own: notify runs once the subscription stands, and cancelling the
// context ends WatchLinks with nil. Bond events themselves need the bonding
// driver, which the QEMU harness provides (see docs/PERFORMANCE.md).
func TestWatchLinksLifecycle(t *testing.T) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("new netns (needs CAP_SYS_ADMIN): %v", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("back to the original netns: %v", err)
	}
	runtime.UnlockOSThread()
	defer orig.Close()
	defer ns.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notified := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- WatchLinks(ctx, func() {
			select {
			case notified <- struct{}{}:
			default:
			}
		}, WatchOptions{Namespace: &ns})
	}()
	guard := time.NewTimer(30 * time.Second) // a hang guard, not a latency assertion
	defer guard.Stop()
	select {
	case <-notified:
	case err := <-done:
		t.Fatalf("WatchLinks ended before notifying: %v", err)
	case <-guard.C:
		t.Fatal("no notify after subscribing")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WatchLinks after cancel: %v", err)
		}
	case <-guard.C:
		t.Fatal("WatchLinks did not return after cancel")
	}
}
