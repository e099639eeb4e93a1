package build

import (
	"bytes"
	"testing"
)

// FuzzReadContext: no context, however malformed, panics or escapes
// (escapes are checked by TestReadContext; here: no panic, and every
// indexed name is clean and relative).
func FuzzReadContext(f *testing.F) {
	f.Add([]byte("FROM busybox\n"))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3})
	f.Add(bytes.Repeat([]byte("ustar"), 300))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, _, err := readContext(bytes.NewReader(data), t.TempDir())
		if err != nil {
			if fsys != nil {
				fsys.Close()
			}
			return
		}
		defer fsys.Close()
		for name := range fsys.entries {
			if name != "" && (name[0] == '/' || name == ".." || bytes.HasPrefix([]byte(name), []byte("../"))) {
				t.Fatalf("unclean name %q", name)
			}
		}
	})
}

// FuzzParseDockerfile: the parser never panics and errors are
// InvalidArgument.
func FuzzParseDockerfile(f *testing.F) {
	for _, s := range []string{
		"FROM busybox\nRUN echo hi\n", "FROM a AS b\nCOPY --from=b . .\n", "RUN <<EOF\nx\nEOF\n",
		"# escape=`\nFROM x\nRUN a `\n b\n", "ARG A\nFROM $A\n", "FROM x\nHEALTHCHECK --interval=1s CMD x\n",
		"FROM x\nONBUILD ONBUILD RUN x\n", "\x00\xff", "FROM x\nCOPY <<EOF /a\nb\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		_, _ = parseDockerfile(src)
	})
}
