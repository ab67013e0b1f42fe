package sysdev

import (
	"regexp"
	"sync"
)

var (
	partSuffix  = regexp.MustCompile(`^((?:sd|vd|xvd|hd)[a-z]+)[0-9]+$`)
	partPSuffix = regexp.MustCompile(`^((?:nvme[0-9]+n[0-9]+)|(?:mmcblk[0-9]+)|(?:nbd[0-9]+)|(?:loop[0-9]+))p[0-9]+$`)
)

// DiskFromName derives a disk from a partition name (sda1 -> sda,
// nvme0n1p2 -> nvme0n1), for devices sysfs does not show; any other name
// is returned as is.
func DiskFromName(dev string) string {
	if m := partSuffix.FindStringSubmatch(dev); m != nil {
		return m[1]
	}
	if m := partPSuffix.FindStringSubmatch(dev); m != nil {
		return m[1]
	}
	return dev
}

// DomainCache remembers each md component's disk and controller by array
// and device name, so a collection does not walk the device's sysfs path
// again. An entry lives while its device stays in the array: a collection
// that no longer sees the device drops it (Prune), so a re-added device (a
// replaced disk) is resolved afresh. Safe for concurrent use. The zero
// value is ready.
type DomainCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]domainEntry
}

type domainEntry struct {
	disk, controller string
	gen              uint64
}

// Begin starts a collection: entries not looked up before the next Prune
// are dropped by it.
func (c *DomainCache) Begin() {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// Prune drops the devices the collection since Begin did not look up.
func (c *DomainCache) Prune() {
	c.mu.Lock()
	for k, e := range c.m {
		if e.gen != c.gen {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

// Lookup is s.DiskOf(md, dev), remembered.
func (c *DomainCache) Lookup(s Sys, md, dev string) (disk, controller string) {
	key := md + "/" + dev
	c.mu.Lock()
	e, ok := c.m[key]
	if ok {
		e.gen = c.gen
		c.m[key] = e
	}
	c.mu.Unlock()
	if ok {
		return e.disk, e.controller
	}
	disk, controller = s.DiskOf(md, dev)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]domainEntry{}
	}
	c.m[key] = domainEntry{disk: disk, controller: controller, gen: c.gen}
	c.mu.Unlock()
	return disk, controller
}
