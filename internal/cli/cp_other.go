//go:build !unix

package cli

import "io/fs"

// inodeKey is unknown here: hardlinks are archived as separate files.
func inodeKey(fs.FileInfo) ([2]uint64, bool) { return [2]uint64{}, false }
