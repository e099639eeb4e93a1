package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/distribution"
)

// commitLayerTwoWalks is CommitLayer as it was before it walked the
// upper once: a changes walk, the diff walk, the commit's usage walk.
func (s *Service) commitLayerTwoWalks(ctx context.Context, key, parentChain string) (*Layer, error) {
	upper, lowers, err := s.snaps.Upper(ctx, key)
	if err != nil {
		return nil, err
	}
	filter := newStubFilter(upper, lowers, nil)
	ch, err := changes(ctx, upper, lowers, filter)
	if err != nil || len(ch) == 0 {
		return nil, err
	}
	blob, diffID, err := s.writeLayerBlob(ctx, key, lowers, upper, filter)
	if err != nil {
		return nil, err
	}
	chain := chainOf(parentChain, diffID)
	if s.haveChain(ctx, chain) {
		err = s.snaps.Remove(ctx, key)
	} else {
		err = s.snaps.Commit(ctx, chain.String(), key)
	}
	if err != nil {
		return nil, err
	}
	size, err := s.layerSize(ctx, chain)
	return &Layer{Blob: blob, DiffID: diffID, ChainID: chain, Size: size}, err
}

// BenchmarkCommitLayer2000 commits the upper of a COPY of issue 8's
// reference context (2,000 files of 140 bytes in 20 directories below
// /src, on a base layer): "onewalk" is CommitLayer, "threewalks" the way
// it was before (changes walk, diff walk, usage walk). Only the commit is
// timed; -count alternates them.
func BenchmarkCommitLayer2000(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	ctx := context.Background()
	root := b.TempDir()
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc, err := New(Config{Root: root, DB: db, Registry: distribution.New(distribution.Options{}), Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil {
		b.Fatal(err)
	}
	var base bytes.Buffer
	tw := tar.NewWriter(&base)
	for _, d := range []string{"bin/", "etc/", "src/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1e9, 0)})
	}
	tw.Close()
	bl, err := svc.LayerFromTar(ctx, &base, "")
	if err != nil {
		b.Fatal(err)
	}
	parent := bl.ChainID.String()
	for _, mode := range []string{"onewalk", "threewalks"} {
		b.Run(mode, func(b *testing.B) {
			n := 0
			for b.Loop() {
				b.StopTimer()
				n++
				key := fmt.Sprint(mode, n, time.Now().UnixNano())
				if _, err := svc.snaps.Prepare(ctx, key, parent, nil); err != nil {
					b.Fatal(err)
				}
				upper, _, _ := svc.snaps.Upper(ctx, key)
				for i := range 2000 {
					d := filepath.Join(upper, "src", "files", fmt.Sprint(i/100))
					if i%100 == 0 {
						os.MkdirAll(d, 0o755)
					}
					// Different content per iteration: every commit makes a new chain.
					os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d.txt", i)), []byte(strings.Repeat(fmt.Sprintf("file %d %s\n", i, key), 5)), 0o644)
				}
				b.StartTimer()
				var l *Layer
				if mode == "onewalk" {
					l, err = svc.CommitLayer(ctx, key, parent)
				} else {
					l, err = svc.commitLayerTwoWalks(ctx, key, parent)
				}
				if err != nil || l == nil {
					b.Fatal(l, err)
				}
			}
		})
	}
}
