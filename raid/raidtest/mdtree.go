// Package raidtest writes md fixture trees (a /proc and a /sys) in the
// layout the kernel uses (Documentation/admin-guide/md.rst and the sysfs
// block device layout), for tests and benchmarks of the md reader and
// collector. The VM harness checks the same code against a real kernel.
package raidtest

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dev is one md component device.
type Dev struct {
	Name string // dev-<Name>: sda1, vdb
	// State is dev-*/state, e.g. "in_sync", "faulty", "spare".
	State string
	// Slot is dev-*/slot: "0", "1", "none".
	Slot string
	// Disk is the whole disk the device is (or is a partition of): sda.
	// When it differs from Name, Name is a partition of Disk.
	Disk string
	// PCI is the controller's PCI function, e.g. 0000:00:17.0.
	PCI string
}

// Array is one /sys/block/<Name>/md directory. Empty fields are not
// written (the file is absent).
type Array struct {
	Name, Level, ArrayState, RaidDisks, Layout        string
	SyncAction, SyncCompleted, SyncSpeed, MismatchCnt string
	Devs                                              []Dev
	// Extra are further md attribute files (degraded, uuid, ...).
	Extra map[string]string
}

// WriteTree writes root/proc/mdstat (when mdstat is not empty) and
// root/sys/block/<md>/md for every array, with dev-*/block links into
// root/sys/devices/pci0000:00/<PCI>/... so disks and controllers resolve.
func WriteTree(root, mdstat string, arrays ...Array) error {
	if mdstat != "" {
		if err := write(filepath.Join(root, "proc", "mdstat"), mdstat); err != nil {
			return err
		}
	}
	sys := filepath.Join(root, "sys")
	for _, a := range arrays {
		dir := filepath.Join(sys, "block", a.Name, "md")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		files := map[string]string{
			"level": a.Level, "array_state": a.ArrayState, "raid_disks": a.RaidDisks, "layout": a.Layout,
			"sync_action": a.SyncAction, "sync_completed": a.SyncCompleted, "sync_speed": a.SyncSpeed,
			"mismatch_cnt": a.MismatchCnt,
		}
		for k, v := range a.Extra {
			files[k] = v
		}
		for name, v := range files {
			if v == "" {
				continue
			}
			if err := write(filepath.Join(dir, name), v+"\n"); err != nil {
				return err
			}
		}
		for _, d := range a.Devs {
			dd := filepath.Join(dir, "dev-"+d.Name)
			if err := write(filepath.Join(dd, "state"), d.State+"\n"); err != nil {
				return err
			}
			if d.Slot != "" {
				if err := write(filepath.Join(dd, "slot"), d.Slot+"\n"); err != nil {
					return err
				}
				if d.Slot != "none" {
					link := filepath.Join(dir, "rd"+d.Slot)
					_ = os.Remove(link)
					if err := os.Symlink("dev-"+d.Name, link); err != nil {
						return err
					}
				}
			}
			target, err := blockDevice(sys, d)
			if err != nil {
				return err
			}
			link := filepath.Join(dd, "block")
			_ = os.Remove(link)
			if err := os.Symlink(target, link); err != nil {
				return err
			}
		}
	}
	return nil
}

// blockDevice creates the device's directory under sys/devices and returns
// it.
func blockDevice(sys string, d Dev) (string, error) {
	disk := d.Disk
	if disk == "" {
		disk = d.Name
	}
	pci := d.PCI
	if pci == "" {
		pci = "0000:00:1f.2"
	}
	diskDir := filepath.Join(sys, "devices", "pci0000:00", pci, "ata1", "host0", "target0:0:0", "0:0:0:0", "block", disk)
	dev := diskDir
	if disk != d.Name {
		dev = filepath.Join(diskDir, d.Name)
		if err := write(filepath.Join(dev, "partition"), "1\n"); err != nil {
			return "", err
		}
	} else if err := os.MkdirAll(dev, 0o755); err != nil {
		return "", err
	}
	return dev, nil
}

func write(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
