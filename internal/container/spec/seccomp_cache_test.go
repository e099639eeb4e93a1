//go:build linux

package spec

import (
	"context"
	"reflect"
	"runtime"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// The default profile is built once (builtinProfile); every container
// still gets a filter of its own: changing one container's filter
// changes neither the next container's nor the profile they come from.
func TestDefaultSeccompNotShared(t *testing.T) {
	h := fakeHost()
	first, err := seccompFor("", false, DefaultCapabilities, h)
	if err != nil {
		t.Fatal(err)
	}
	want, err := defaultProfile().toOCI(DefaultCapabilities, "amd64", h.kernel)
	if err != nil {
		t.Fatal(err)
	}
	// Scribble over everything the first filter holds.
	*first.DefaultErrnoRet = 99
	first.Architectures[0] = "SCMP_ARCH_NONE"
	for i := range first.Syscalls {
		first.Syscalls[i].Names[0] = "scribbled"
		if first.Syscalls[i].ErrnoRet != nil {
			*first.Syscalls[i].ErrnoRet = 99
		}
		for j := range first.Syscalls[i].Args {
			first.Syscalls[i].Args[j].Value = 99
		}
	}
	second, err := seccompFor("builtin", false, DefaultCapabilities, h)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOARCH == "amd64" && !reflect.DeepEqual(second, want) {
		t.Fatal("a container's filter changed what the next container gets")
	}
	if *second.DefaultErrnoRet != 1 || second.Syscalls[0].Names[0] == "scribbled" {
		t.Fatalf("shared state: errno %d, first name %q", *second.DefaultErrnoRet, second.Syscalls[0].Names[0])
	}
}

// BenchmarkGenerateDefault is spec generation for `run --network none
// busybox true`, which start does before it calls the shim.
func BenchmarkGenerateDefault(b *testing.B) {
	dir := b.TempDir()
	in := Input{ID: "0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab0123", Rootfs: dir,
		Config: &container.Config{Cmd: []string{"true"}}, HostConfig: &container.HostConfig{NetworkMode: "none"}}
	for b.Loop() {
		if _, err := Generate(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
