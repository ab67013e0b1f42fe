package raid

import "golang.org/x/sys/unix"

func openat(dirfd int, rel string) (int, error) {
	return unix.Openat(dirfd, rel, unix.O_RDONLY|unix.O_CLOEXEC, 0)
}
