package build

import (
	"bufio"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/mountinfo"
)

// unmountAll detaches every mount stacked on p.
func unmountAll(p string) {
	for i := 0; i < 16 && isMountPoint(p); i++ {
		if unix.Unmount(p, unix.MNT_DETACH) != nil {
			return
		}
	}
}

// isMountPoint reports whether something is mounted on p.
func isMountPoint(p string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && mountinfo.Unescape(fields[4]) == p {
			return true
		}
	}
	return false
}
