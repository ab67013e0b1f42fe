package multipath_test

import "os"

func osSymlink(target, link string) error { return os.Symlink(target, link) }
