package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
)

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := archive.Compress(&buf, archive.Gzip, 0)
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

// tarNames lists the regular files of a tar with their content.
func tarFiles(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out[strings.TrimPrefix(h.Name, "./")] = string(b)
		}
	}
}

func TestImportWithChangesAndExport(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	rootfs := buildTar(t, []tarEntry{
		{name: "bin/", typeflag: tar.TypeDir},
		{name: "bin/app", typeflag: tar.TypeReg, body: []byte("#!/bin/sh\necho app\n")},
		{name: "etc/", typeflag: tar.TypeDir},
		{name: "etc/os-release", typeflag: tar.TypeReg, body: []byte("ID=test\n")},
	})
	changes := []string{
		`CMD ["/bin/app", "-x"]`,
		`ENTRYPOINT /bin/sh run.sh`,
		`ENV A=1 B="two words" C=three\ words`,
		`ENV LEGACY some value`,
		`EXPOSE 80 53/udp 9000-9001`,
		`LABEL org.x="y z" plain=v`,
		`USER nobody`,
		`VOLUME ["/data"]`,
		`VOLUME /a /b`,
		`WORKDIR /srv`,
		`WORKDIR sub`,
		`STOPSIGNAL SIGQUIT`,
		`onbuild RUN echo hi`,
	}
	id, err := e.svc.Import(ctx, bytes.NewReader(gzipBytes(t, rootfs)), ImportOptions{Ref: "imported/app", Changes: changes})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	ins, err := e.svc.Inspect(ctx, "imported/app:latest")
	if err != nil {
		t.Fatal(err)
	}
	c := ins.Config
	keys := func(m map[string]struct{}) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"id", ins.ID, id.String()},
		{"tags", ins.RepoTags, []string{"imported/app:latest"}},
		{"comment", ins.Comment, "Imported from -"},
		{"cmd", c.Cmd, []string{"/bin/app", "-x"}},
		{"entrypoint", c.Entrypoint, []string{"/bin/sh", "-c", "/bin/sh run.sh"}},
		{"env", c.Env, []string{"A=1", "B=two words", "C=three words", "LEGACY=some value"}},
		{"ports", keys(c.ExposedPorts), []string{"53/udp", "80/tcp", "9000/tcp", "9001/tcp"}},
		{"labels", c.Labels, map[string]string{"org.x": "y z", "plain": "v"}},
		{"user", c.User, "nobody"},
		{"volumes", keys(c.Volumes), []string{"/a", "/b", "/data"}},
		{"workdir", c.WorkingDir, "/srv/sub"},
		{"stopsignal", c.StopSignal, "SIGQUIT"},
		{"onbuild", c.OnBuild, []string{"RUN echo hi"}},
		{"layers", len(ins.RootFS.Layers), 1},
		{"os", ins.Os + "/" + ins.Architecture, "linux/amd64"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %#v, want %#v", ch.what, ch.got, ch.want)
		}
	}
	if rep, err := e.svc.Check(ctx, false); err != nil || !rep.OK() {
		t.Fatalf("check: %+v %v", rep, err)
	}

	// Export the image's chain, then a container-like active snapshot on it.
	var top string
	e.svc.db.View(func(tx *bolt.Tx) error { r, _ := getRecord(tx, id); top = r.TopChainID(); return nil })
	var out bytes.Buffer
	if err := e.svc.ExportSnapshot(ctx, top, &out); err != nil {
		t.Fatalf("export: %v", err)
	}
	files := tarFiles(t, out.Bytes())
	if files["bin/app"] != "#!/bin/sh\necho app\n" || files["etc/os-release"] != "ID=test\n" {
		t.Fatalf("exported files: %v", files)
	}
	if _, err := e.svc.snaps.Prepare(ctx, "ctr-rw", top, nil); err != nil {
		t.Fatal(err)
	}
	upper, _, _ := e.svc.snaps.Upper(ctx, "ctr-rw")
	os.WriteFile(filepath.Join(upper, "new"), []byte("written"), 0o644)
	out.Reset()
	if err := e.svc.ExportSnapshot(ctx, "ctr-rw", &out); err != nil {
		t.Fatalf("export active: %v", err)
	}
	files = tarFiles(t, out.Bytes())
	if files["new"] != "written" || files["bin/app"] == "" {
		t.Fatalf("exported active files: %v", files)
	}
	if err := e.svc.snaps.Remove(ctx, "ctr-rw"); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(e.root, "export-*")); len(left) > 0 {
		t.Fatalf("export left %v", left)
	}
	if err := e.svc.ExportSnapshot(ctx, "nope", io.Discard); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("export of a missing snapshot: %v", err)
	}

	// The imported image saves and loads like any other.
	var saved bytes.Buffer
	if err := e.svc.Save(ctx, []string{"imported/app"}, &saved, DockerArchive); err != nil {
		t.Fatal(err)
	}
	e.removeAll(t)
	if _, err := e.svc.Load(ctx, &saved, nil); err != nil {
		t.Fatal(err)
	}
	if ins2, err := e.svc.Inspect(ctx, "imported/app"); err != nil || ins2.ID != ins.ID {
		t.Fatalf("reloaded import: %v", err)
	}
	e.removeAll(t)
}

func TestImportRefusesBadChanges(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	rootfs := rawTar(t, map[string]string{"f": "x"})
	for _, ch := range []string{"RUN echo hi", "FROM scratch", "EXPOSE abc", "ENV", "ONBUILD ONBUILD RUN x", `LABEL a="unterminated`, "STOPSIGNAL"} {
		_, err := e.svc.Import(ctx, bytes.NewReader(rootfs), ImportOptions{Ref: "bad:1", Changes: []string{ch}})
		if !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("change %q: %v", ch, err)
		}
	}
	// A plain (uncompressed) tar with a message and no tag.
	id, err := e.svc.Import(ctx, bytes.NewReader(rootfs), ImportOptions{Message: "from a test"})
	if err != nil {
		t.Fatal(err)
	}
	ins, err := e.svc.Inspect(ctx, id.String())
	if err != nil || ins.Comment != "from a test" || len(ins.RepoTags) != 0 {
		t.Fatalf("inspect: %+v %v", ins, err)
	}
	e.removeAll(t)
}
