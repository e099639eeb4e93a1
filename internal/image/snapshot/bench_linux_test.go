package snapshot

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkPrepareMountRemove times the container rootfs path: the share of
// `run` that belongs to the snapshotter.
func BenchmarkPrepareMountRemove(b *testing.B) {
	requireRoot(b)
	ctx := context.Background()
	s := open(b)
	chain := ""
	for i := range 5 {
		chain = unpack(b, s, chain, layerTar(b, f(fmt.Sprint("f", i), "x")))
	}
	mnt := b.TempDir()
	i := 0
	var tp, tm, tu, tr time.Duration
	defer func() {
		b.Logf("prepare %v mount %v unmount %v remove %v", tp/time.Duration(i), tm/time.Duration(i), tu/time.Duration(i), tr/time.Duration(i))
	}()
	for b.Loop() {
		i++
		key := fmt.Sprint("c", i)
		t0 := time.Now()
		m, err := s.Prepare(ctx, key, chain, nil)
		t1 := time.Now()
		tp += t1.Sub(t0)
		if err != nil {
			b.Fatal(err)
		}
		if err := MountAll(m, mnt); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		tm += t2.Sub(t1)
		if err := Unmount(mnt); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		tu += t3.Sub(t2)
		if err := s.Remove(ctx, key); err != nil {
			b.Fatal(err)
		}
		tr += time.Since(t3)
	}
}
