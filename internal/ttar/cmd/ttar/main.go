// Command ttar packs a directory tree into a ttar archive on stdout; the
// fixture generators use it.
package main

import (
	"fmt"
	"os"

	"github.com/spofwatch/spofwatch/internal/ttar"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ttar DIR > archive.ttar")
		os.Exit(2)
	}
	if err := ttar.Pack(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ttar:", err)
		os.Exit(1)
	}
}
