package image

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestUnpackLayer unpacks two layers of a chain from blobs, fetches
// nothing that is there already, and refuses a blob whose bytes or
// uncompressed content are not what the descriptor and diff ID say,
// leaving neither a blob nor a snapshot behind.
func TestUnpackLayer(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	blobOf := func(files map[string]string) ([]byte, ocispec.Descriptor, digest.Digest) {
		l := tarLayer(t, files)
		rc, _ := l.Compressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		diff, _ := l.DiffID()
		return b, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b), Size: int64(len(b))}, digest.Digest(diff.String())
	}
	opens := 0
	opener := func(b []byte) func(context.Context) (io.ReadCloser, error) {
		return func(context.Context) (io.ReadCloser, error) {
			opens++
			return io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	b1, d1, diff1 := blobOf(map[string]string{"a": "1"})
	b2, d2, diff2 := blobOf(map[string]string{"b": "2"})
	release := e.svc.HoldGC()
	l1, err := e.svc.UnpackLayer(ctx, d1, diff1, "", opener(b1))
	if err != nil {
		t.Fatal(err)
	}
	l2, err := e.svc.UnpackLayer(ctx, d2, diff2, l1.ChainID.String(), opener(b2))
	if err != nil {
		t.Fatal(err)
	}
	if l2.ChainID != chainOf(l1.ChainID.String(), diff2) || !e.svc.haveChain(ctx, l2.ChainID) || !e.svc.haveBlob(ctx, d2.Digest) {
		t.Fatalf("layer 2: %+v", l2)
	}
	if _, err := e.svc.UnpackLayer(ctx, d2, diff2, l1.ChainID.String(), opener(b2)); err != nil || opens != 2 {
		t.Fatalf("again: %v, %d opens (want no new fetch)", err, opens)
	}
	// Bytes that are not the blob: refused by the content store.
	b3, d3, diff3 := blobOf(map[string]string{"c": "3"})
	bad := append([]byte(nil), b3...)
	bad[len(bad)/2] ^= 0xff
	if _, err := e.svc.UnpackLayer(ctx, d3, diff3, "", opener(bad)); err == nil {
		t.Fatalf("a corrupt blob was accepted")
	}
	// The right blob with the wrong diff ID.
	if _, err := e.svc.UnpackLayer(ctx, d3, diff1, "", opener(b3)); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("wrong diff ID: %v", err)
	}
	if e.svc.haveBlob(ctx, d3.Digest) || e.svc.haveChain(ctx, chainOf("", diff3)) {
		t.Fatalf("a refused layer left its blob or snapshot")
	}
	// A parent chain that is not there.
	if _, err := e.svc.UnpackLayer(ctx, d3, diff3, chainOf("", digest.FromString("x")).String(), opener(b3)); !errdefs.Is(err, errdefs.FailedPrecondition) {
		t.Fatalf("missing parent: %v", err)
	}
	release()
	n := 0
	e.svc.snaps.Walk(ctx, func(i snapshotInfo) error {
		if i.Key != l1.ChainID.String() && i.Key != l2.ChainID.String() {
			t.Errorf("snapshot left: %+v", i)
		}
		n++
		return nil
	})
	if n != 2 {
		t.Fatalf("%d snapshots, want the 2 chains", n)
	}
}
