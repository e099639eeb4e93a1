package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cachePair starts a registry and two daemons with their own data roots,
// logged in to it, both with the same base image (pushed by the first,
// pulled by the second, as CI runners get theirs). It returns the
// registry's address and the base image's reference.
func cachePair(t *testing.T) (reg, base string, a, b *daemon) {
	t.Helper()
	reg = startRegistry(t)
	a, b = startDaemon(t), startDaemon(t)
	for _, d := range []*daemon{a, b} {
		o, e, code := d.cli(bins.cli, strings.NewReader("interop\n"), "login", reg, "-u", "ci", "--password-stdin")
		if code != 0 {
			t.Fatalf("login: %d %s %s", code, o, e)
		}
	}
	base = reg + "/e2e/base:1"
	a.importBusybox(base)
	a.output(bins.cli, "push", base)
	b.output(bins.cli, "pull", base)
	return reg, base, a, b
}

func (d *daemon) imageID(ref string) string {
	d.t.Helper()
	return strings.TrimSpace(d.output(bins.cli, "image", "inspect", "--format", "{{.Id}}", ref))
}

// cacheDockerfile: each RUN writes a random value into the image, so a
// RUN that ran again gives another image; the first also keeps the
// previous value of a cache mount, which shows the mount's content.
const cacheDockerfile = `FROM %s
ARG FLAVOR=plain
WORKDIR /app
COPY app.txt ./
RUN --mount=type=cache,target=/cache,id=e2e-cache sh -c 'cat /cache/seen > /app/previous 2>/dev/null || echo none > /app/previous; head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n" > /app/random; cp /app/random /cache/seen'
RUN echo "$FLAVOR $(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" > /app/second
ENV MODE=ci
CMD ["cat", "/app/random"]
`

// TestBuildCacheRegistryExportImport builds on daemon A with --cache-to
// a registry and the same context on daemon B, with its own data root
// and empty build cache, with --cache-from: every step is a cache hit, no
// RUN runs (the random values the RUN steps wrote are A's, the image ID
// is A's), and B has the cache mount's content. Then a changed file
// rebuilds from its COPY on even with the imported cache, whose RUN sees
// the imported cache mount; a missing cache and something that is not a
// cache are warnings, not failures; and the same round trip works
// through an OCI layout directory (type=local), where a corrupt blob is a
// warning too.
func TestBuildCacheRegistryExportImport(t *testing.T) {
	reg, base, a, b := cachePair(t)
	ctxDir := buildDir(t, map[string]string{
		"Dockerfile": fmt.Sprintf(cacheDockerfile, base),
		"app.txt":    "v1",
	})
	cacheRef := reg + "/e2e/cache:1"
	t0 := time.Now()
	out := a.mustBuild(bins.cli, nil, "--progress=classic", "--cache-to", "type=registry,ref="+cacheRef+",mode=max", "-t", "app:a", ctxDir)
	t.Logf("cold build with the cache export on A: %v", time.Since(t0))
	if !strings.Contains(out, "Exported build cache to "+cacheRef+": 7 steps") {
		t.Fatalf("export:\n%s", out)
	}
	idA := a.imageID("app:a")
	randomA := a.output(bins.cli, "run", "--rm", "app:a")
	secondA := a.output(bins.cli, "run", "--rm", "app:a", "cat", "/app/second")

	// B: nothing local but the base image; everything from the cache.
	t0 = time.Now()
	out = b.mustBuild(bins.cli, nil, "--progress=classic", "--cache-from", "type=registry,ref="+cacheRef, "-t", "app:b", ctxDir)
	t.Logf("build from the imported cache on B: %v", time.Since(t0))
	if !strings.Contains(out, "Importing build cache from "+cacheRef+": 7 steps, 1 cache mounts") {
		t.Fatalf("import:\n%s", out)
	}
	if n := strings.Count(out, "Using cache"); n != 7 || strings.Contains(out, "Running in") {
		t.Fatalf("build on B with the imported cache: %d cache hits, want 7, and no RUN:\n%s", n, out)
	}
	if id := b.imageID("app:b"); id != idA {
		t.Fatalf("image on B %s, on A %s", id, idA)
	}
	if got := b.output(bins.cli, "run", "--rm", "app:b"); got != randomA {
		t.Fatalf("RUN ran again on B: %q, A wrote %q", got, randomA)
	}
	if got := b.output(bins.cli, "run", "--rm", "app:b", "cat", "/app/second"); got != secondA {
		t.Fatalf("second RUN ran again on B: %q, A wrote %q", got, secondA)
	}

	// A changed file: ARG and WORKDIR still come from the cache, COPY and
	// what follows run; the RUN sees the cache mount B imported (A's last
	// value). Through the docker CLI, whose --cache-from berth reads.
	writeFile(t, filepath.Join(ctxDir, "app.txt"), "v2")
	out = b.mustBuild(bins.docker, nil, "--cache-from", "type=registry,ref="+cacheRef, "-t", "app:b2", ctxDir)
	if n := strings.Count(out, "Using cache"); n != 2 || strings.Count(out, "Running in") != 2 {
		t.Fatalf("rebuild after a change: %d cache hits, want 2 (ARG, WORKDIR), and both RUNs:\n%s", n, out)
	}
	if got := b.output(bins.cli, "run", "--rm", "app:b2", "cat", "/app/previous"); got != randomA {
		t.Fatalf("cache mount on B: %q, want A's %q", got, randomA)
	}
	if got := b.output(bins.cli, "run", "--rm", "app:b2"); got == randomA {
		t.Fatalf("the changed build reused the old RUN result")
	}

	// Missing and wrong caches: a warning each, and the build works.
	out = b.mustBuild(bins.cli, nil, "--progress=classic", "--cache-from", "type=registry,ref="+reg+"/e2e/missing:1",
		"--cache-from", "type=registry,ref="+base, "-t", "app:b3", ctxDir)
	if !strings.Contains(out, "[Warning] build cache "+reg+"/e2e/missing:1 not imported") ||
		!strings.Contains(out, "[Warning] build cache "+base+" not imported: not a") ||
		!strings.Contains(out, "Successfully tagged app:b3") {
		t.Fatalf("missing and wrong caches:\n%s", out)
	}

	// mode=max with two stages: the build stage's steps are exported
	// too, so B runs nothing, COPY --from included.
	ms := buildDir(t, map[string]string{
		"Dockerfile": fmt.Sprintf(`FROM %s AS build
RUN head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > /out
FROM %s
COPY --from=build /out /out
CMD ["cat", "/out"]
`, base, base),
	})
	msRef := reg + "/e2e/cache:ms"
	a.mustBuild(bins.cli, nil, "--cache-to", "type=registry,ref="+msRef+",mode=max", "-t", "ms:a", ms)
	out = b.mustBuild(bins.cli, nil, "--progress=classic", "--cache-from", "type=registry,ref="+msRef, "-t", "ms:b", ms)
	if n := strings.Count(out, "Using cache"); n != 3 || strings.Contains(out, "Running in") {
		t.Fatalf("two stages, mode=max: %d cache hits, want 3:\n%s", n, out)
	}
	if a.imageID("ms:a") != b.imageID("ms:b") {
		t.Fatalf("two stages: different images")
	}

	// type=local: A exports into a directory, B imports from it.
	layout := filepath.Join(t.TempDir(), "cache")
	writeFile(t, filepath.Join(ctxDir, "app.txt"), "v3")
	a.mustBuild(bins.cli, nil, "--cache-to", "type=local,dest="+layout, "-t", "app:a4", ctxDir)
	idA4 := a.imageID("app:a4")
	corrupt := filepath.Join(t.TempDir(), "corrupt")
	copyTreeForTest(t, layout, corrupt)
	out = b.mustBuild(bins.cli, nil, "--progress=classic", "--cache-from", "type=local,src="+layout, "-t", "app:b4", ctxDir)
	if n := strings.Count(out, "Using cache"); n != 7 || strings.Contains(out, "Running in") {
		t.Fatalf("import from a layout: %d cache hits:\n%s", n, out)
	}
	if id := b.imageID("app:b4"); id != idA4 {
		t.Fatalf("image from the layout cache %s, on A %s", id, idA4)
	}
	// A corrupt config blob: a warning, and the build goes on.
	corruptCacheConfig(t, corrupt)
	writeFile(t, filepath.Join(ctxDir, "app.txt"), "v3") // same content
	out = b.mustBuild(bins.cli, nil, "--progress=classic", "--cache-from", "type=local,src="+corrupt, "-t", "app:b5", ctxDir)
	if !strings.Contains(out, "[Warning] build cache "+corrupt+":latest not imported") || !strings.Contains(out, "Successfully tagged app:b5") {
		t.Fatalf("corrupt layout cache:\n%s", out)
	}

	// A corrupt layer blob: the steps below it come from the cache, its
	// own step runs (with a warning), nothing corrupt is used.
	lc := buildDir(t, map[string]string{
		"Dockerfile": fmt.Sprintf("FROM %s\nCOPY f /f\nRUN head -c 16 /dev/urandom | od -An -tx1 > /r\nCMD [\"cat\", \"/r\"]\n", base),
		"f":          "layer test",
	})
	layerCache := filepath.Join(t.TempDir(), "lc")
	a.mustBuild(bins.cli, nil, "--cache-to", "type=local,dest="+layerCache, "-t", "lc:a", lc)
	corruptLastLayer(t, layerCache)
	out = b.mustBuild(bins.cli, nil, "--progress=classic", "--cache-from", "type=local,src="+layerCache, "-t", "lc:b", lc)
	if strings.Count(out, "Using cache") != 1 || strings.Count(out, "Running in") != 1 || !strings.Contains(out, "[Warning] imported cache for this step not used") {
		t.Fatalf("corrupt layer blob:\n%s", out)
	}
	if b.output(bins.cli, "run", "--rm", "lc:b") == a.output(bins.cli, "run", "--rm", "lc:a") {
		t.Fatalf("the RUN with the corrupt layer did not run")
	}
}

// TestBuildCacheFromImagesClassic is the classic builder's --cache-from
// through the docker CLI (DOCKER_BUILDKIT=0): daemon B has pulled the
// image A built and pushed, and nothing in its build cache; with the
// image as a cache source, every step of the same Dockerfile matches the
// image's history, so B gives the very same image without running a
// RUN. A cache source that does not exist is skipped, as dockerd does.
// (Also: a cache mount id of ".." is a directory of its own.)
func TestBuildCacheFromImagesClassic(t *testing.T) {
	reg, base, a, b := cachePair(t)
	ctxDir := buildDir(t, map[string]string{
		"Dockerfile": fmt.Sprintf(strings.ReplaceAll(cacheDockerfile, "--mount=type=cache,target=/cache,id=e2e-cache sh -c '", "sh -c 'mkdir -p /cache; "), base),
		"app.txt":    "v1",
	})
	img := reg + "/e2e/app:1"
	a.mustBuild(bins.docker, nil, "--build-arg", "FLAVOR=ci", "-t", img, ctxDir)
	a.output(bins.docker, "push", img)
	idA := a.imageID(img)
	randomA := a.output(bins.docker, "run", "--rm", img)

	b.output(bins.docker, "pull", img)
	out := b.mustBuild(bins.docker, nil, "--build-arg", "FLAVOR=ci", "--cache-from", img, "--cache-from", "nothing/here:1", "-t", "app:b", ctxDir)
	if n := strings.Count(out, "Using cache"); n != 7 || strings.Contains(out, "Running in") {
		t.Fatalf("build with --cache-from an image: %d cache hits, want 7, and no RUN:\n%s", n, out)
	}
	if id := b.imageID("app:b"); id != idA {
		t.Fatalf("image %s, the cache source is %s", id, idA)
	}
	if got := b.output(bins.docker, "run", "--rm", "app:b"); got != randomA {
		t.Fatalf("RUN ran again: %q, want %q", got, randomA)
	}
	// A cache mount id cannot name the builder's own directories (with
	// "..", it was <data-root>/build, with the build's context in it): a
	// new id is an empty directory.
	esc := buildDir(t, map[string]string{"Dockerfile": fmt.Sprintf("FROM %s\nRUN --mount=type=cache,id=..,target=/x sh -c 'ls -A /x; test -z \"$(ls -A /x)\"'\n", base)})
	b.mustBuild(bins.docker, nil, esc)

	// Another build argument: the RUN steps that see it do not match.
	out = b.mustBuild(bins.docker, nil, "--build-arg", "FLAVOR=other", "--cache-from", img, "-t", "app:b2", ctxDir)
	if n := strings.Count(out, "Using cache"); n != 3 || strings.Count(out, "Running in") != 2 {
		t.Fatalf("another build arg: %d cache hits, want 3 (ARG, WORKDIR, COPY):\n%s", n, out)
	}
}

// corruptCacheConfig changes a byte of the config blob of the cache
// manifest of an OCI layout.
func corruptCacheConfig(t *testing.T, dir string) {
	t.Helper()
	var idx struct {
		Manifests []struct{ Digest string }
	}
	var man struct {
		Config struct{ Digest string }
	}
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err == nil {
		err = json.Unmarshal(data, &idx)
	}
	if err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, data)
	}
	if data, err = os.ReadFile(blob(idx.Manifests[0].Digest)); err == nil {
		err = json.Unmarshal(data, &man)
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg := blob(man.Config.Digest)
	if data, err = os.ReadFile(cfg); err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// corruptLastLayer flips a byte in the middle of the last layer blob of
// the cache manifest of an OCI layout (the top layer of its image).
func corruptLastLayer(t *testing.T, dir string) {
	t.Helper()
	var idx struct {
		Manifests []struct{ Digest string }
	}
	var man struct {
		Layers []struct{ Digest string }
	}
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err == nil {
		err = json.Unmarshal(data, &idx)
	}
	if err == nil {
		data, err = os.ReadFile(blob(idx.Manifests[0].Digest))
	}
	if err == nil {
		err = json.Unmarshal(data, &man)
	}
	if err != nil || len(man.Layers) == 0 {
		t.Fatalf("cache manifest: %v %s", err, data)
	}
	f := blob(man.Layers[len(man.Layers)-1].Digest)
	if data, err = os.ReadFile(f); err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTreeForTest copies a directory of regular files.
func copyTreeForTest(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
