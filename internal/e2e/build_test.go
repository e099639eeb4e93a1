package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// buildDir writes files (name → content) into a new temporary directory.
func buildDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	return dir
}

// dockerBuild runs `docker build` with the classic builder (DOCKER_BUILDKIT=0).
func (d *daemon) dockerBuild(stdin io.Reader, args ...string) (string, string, int) {
	d.t.Helper()
	d.t.Setenv("DOCKER_BUILDKIT", "0")
	return d.cli(bins.docker, stdin, append([]string{"build"}, args...)...)
}

func (d *daemon) mustBuild(bin string, stdin io.Reader, args ...string) string {
	d.t.Helper()
	d.t.Setenv("DOCKER_BUILDKIT", "0")
	o, e, code := d.cli(bin, stdin, append([]string{"build"}, args...)...)
	if code != 0 {
		d.t.Fatalf("%s build %v: exit %d\n%s\n%s", filepath.Base(bin), args, code, o, e)
	}
	return o
}

func (d *daemon) output(bin string, args ...string) string {
	d.t.Helper()
	o, e, code := d.cli(bin, nil, args...)
	if code != 0 {
		d.t.Fatalf("%s %v: exit %d: %s %s", filepath.Base(bin), args, code, o, e)
	}
	return o
}

const multiStage = `# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM $BASE AS build
ARG VERSION=1
WORKDIR /src
COPY src/ ./
RUN echo "v$VERSION $(cat main.txt)" > /out.txt && mkdir -p /dist && cp /out.txt /dist/ && ls /src > /dist/listing

FROM busybox AS unused
RUN exit 1

FROM busybox
COPY --from=build --chown=berth:berth /dist/ /app/
USER berth
ENV MODE=prod PATH=/usr/bin:/bin
LABEL org.example.tier=runtime
EXPOSE 8080/tcp
ENTRYPOINT ["cat"]
CMD ["/app/out.txt"]
`

// TestBuildMultiStageCache builds the seed documents' pattern through the
// docker CLI's classic builder: a build stage and a runtime stage run as
// a non-root user with COPY --from --chown, ARG before FROM, build args;
// a stage the target does not need is not built. An unchanged rebuild is
// all cache hits with the same image ID (also after berthd restarts);
// editing one source rebuilds from its COPY on, touching one does not;
// no intermediate container is left.
func TestBuildMultiStageCache(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	dir := buildDir(t, map[string]string{
		"Dockerfile":    multiStage,
		"src/main.txt":  "main",
		"src/other.txt": "other",
		"src/debug.log": "noise",
		"secret.txt":    "do not ship",
		".dockerignore": "secret.txt\n**/*.log\n",
	})
	out := d.mustBuild(dk, nil, "--build-arg", "VERSION=2", "-t", "app:1", dir)
	if strings.Contains(out, "exit 1") || strings.Contains(out, "Step 8/") && strings.Contains(out, "RUN exit 1") {
		t.Fatalf("the unused stage was built:\n%s", out)
	}
	if !strings.Contains(out, "Successfully tagged app:1") {
		t.Fatalf("build output:\n%s", out)
	}
	if got := d.output(dk, "run", "--rm", "app:1"); got != "v2 main\n" {
		t.Fatalf("run: %q", got)
	}
	got := d.output(dk, "run", "--rm", "--entrypoint", "sh", "app:1", "-c", "id -u; stat -c %U:%G /app/out.txt; cat /app/listing; echo $MODE")
	if got != "1000\nberth:berth\nmain.txt\nother.txt\nprod\n" {
		t.Fatalf("runtime stage: %q", got)
	}
	insp := d.output(dk, "image", "inspect", "--format", "{{.Config.User}}|{{index .Config.Labels \"org.example.tier\"}}|{{.Config.ExposedPorts}}|{{.Config.Entrypoint}}", "app:1")
	if strings.TrimSpace(insp) != "berth|runtime|map[8080/tcp:{}]|[cat]" {
		t.Fatalf("inspect: %q", insp)
	}
	hist := d.output(dk, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "app:1")
	if !strings.Contains(hist, "/bin/sh -c #(nop)  ENTRYPOINT [\"cat\"]") || !strings.Contains(hist, "COPY from:build:/dist/ in /app/") {
		t.Fatalf("history:\n%s", hist)
	}
	id1 := strings.TrimSpace(d.output(dk, "image", "inspect", "--format", "{{.Id}}", "app:1"))

	// Unchanged: every step from the cache, the same image.
	t0 := time.Now()
	out = d.mustBuild(dk, nil, "--build-arg", "VERSION=2", "-t", "app:1", dir)
	t.Logf("fully cached rebuild through the docker CLI: %v", time.Since(t0))
	if n := strings.Count(out, "Using cache"); n != 11 {
		t.Fatalf("cached rebuild: %d cache hits, want 11:\n%s", n, out)
	}
	if id := strings.TrimSpace(d.output(dk, "image", "inspect", "--format", "{{.Id}}", "app:1")); id != id1 {
		t.Fatalf("cached rebuild gave %s, want %s", id, id1)
	}
	// A new mtime is not a change.
	now := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "src/main.txt"), now, now); err != nil {
		t.Fatal(err)
	}
	out = d.mustBuild(dk, nil, "--build-arg", "VERSION=2", "-t", "app:1", dir)
	if n := strings.Count(out, "Using cache"); n != 11 {
		t.Fatalf("rebuild after touch: %d cache hits:\n%s", n, out)
	}
	// An ignored file changing is not a change either.
	writeFile(t, filepath.Join(dir, "src/debug.log"), "more noise")
	out = d.mustBuild(dk, nil, "--build-arg", "VERSION=2", "-t", "app:1", dir)
	if n := strings.Count(out, "Using cache"); n != 11 {
		t.Fatalf("rebuild after an ignored change: %d cache hits:\n%s", n, out)
	}
	// One source changes: the build stage's steps before its COPY are
	// cached, the COPY and what follows are not.
	writeFile(t, filepath.Join(dir, "src/main.txt"), "edited")
	out = d.mustBuild(dk, nil, "--build-arg", "VERSION=2", "-t", "app:2", dir)
	step := func(n int) string {
		i := strings.Index(out, fmt.Sprintf("Step %d/", n))
		j := strings.Index(out[i+1:], "Step ")
		if j < 0 {
			return out[i:]
		}
		return out[i : i+1+j]
	}
	if !strings.Contains(step(3), "Using cache") || strings.Contains(step(4), "Using cache") || strings.Contains(step(5), "Using cache") {
		t.Fatalf("after editing one source, the cache should break at its COPY (step 4):\n%s", out)
	}
	if got := d.output(dk, "run", "--rm", "app:2"); got != "v2 edited\n" {
		t.Fatalf("run after edit: %q", got)
	}
	// A change that leaves the build stage's output as it was: the build
	// stage reruns from its COPY, the runtime stage stays cached (COPY
	// --from is keyed by the content it copies).
	writeFile(t, filepath.Join(dir, "src/other.txt"), "other, edited")
	out = d.mustBuild(dk, nil, "--build-arg", "VERSION=2", "-t", "app:2", dir)
	if strings.Contains(step(4), "Using cache") || strings.Contains(step(5), "Using cache") || !strings.Contains(step(7), "Using cache") || strings.Count(out, "Using cache") != 9 {
		t.Fatalf("an edit that changes nothing the runtime stage copies should leave it cached:\n%s", out)
	}
	// A different build arg changes the RUN that uses it.
	out = d.mustBuild(dk, nil, "--build-arg", "VERSION=3", "-t", "app:3", dir)
	if !strings.Contains(step(4), "Using cache") || strings.Contains(step(5), "Using cache") {
		t.Fatalf("a new VERSION should rebuild its RUN (step 5) only on:\n%s", out)
	}
	if ps := d.output(dk, "ps", "-aq"); ps != "" {
		t.Fatalf("intermediate containers left: %q", ps)
	}
	// The cache survives a restart of berthd.
	d.stop()
	d.start()
	out = d.mustBuild(dk, nil, "--build-arg", "VERSION=3", "-t", "app:3", dir)
	if n := strings.Count(out, "Using cache"); n != 11 {
		t.Fatalf("rebuild after a restart: %d cache hits:\n%s", n, out)
	}
	// system df shows the cache; builder prune empties it, images stay.
	df := d.output(dk, "system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	if !strings.Contains(df, "Build Cache ") || strings.Contains(df, "Build Cache 0") {
		t.Fatalf("system df: %q", df)
	}
	pr := d.output(bins.cli, "builder", "prune", "-f")
	if !strings.Contains(pr, "Total reclaimed space") {
		t.Fatalf("builder prune: %q", pr)
	}
	df = d.output(dk, "system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	if !strings.Contains(df, "Build Cache 0") {
		t.Fatalf("system df after prune: %q", df)
	}
	if got := d.output(dk, "run", "--rm", "app:3"); got != "v3 edited\n" {
		t.Fatalf("image after prune: %q", got)
	}
	out = d.mustBuild(dk, nil, "--build-arg", "VERSION=3", "-t", "app:3", dir)
	if strings.Contains(out, "Using cache") {
		t.Fatalf("build after prune used a cache:\n%s", out)
	}
}

// TestBuildInstructions covers the other instructions and options
// through both CLIs: heredocs, ADD with tar extraction and a URL with
// --checksum, SHELL, ONBUILD, STOPSIGNAL, HEALTHCHECK, VOLUME, -f -,
// a Dockerfile on stdin, --target, --label, -q, --iidfile, --no-cache,
// --network none, --add-host, RUN --mount=type=cache.
func TestBuildInstructions(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk, bt := bins.docker, bins.cli
	payload := "fetched over http\n"
	sum := sha256.Sum256([]byte(payload))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, payload)
	}))
	defer srv.Close()

	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "inner/x.txt", Mode: 0o640, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("x\n"))
	tw.Close()
	dir := buildDir(t, map[string]string{
		"files.tar":      tb.String(),
		"sub/a/x.txt":    "x",
		"sub/b/y.txt":    "y",
		"pile/keep.txt":  "keep",
		"pile/drop.skip": "drop",
		"Dockerfile": `FROM busybox AS base
COPY --parents sub/a/x.txt sub/b/y.txt /par/
COPY --exclude=*.skip pile/ /pile/
SHELL ["/bin/sh", "-c"]
ADD files.tar /opt/
ADD --checksum=sha256:` + fmt.Sprintf("%x", sum) + ` ` + srv.URL + `/remote.txt /opt/remote.txt
RUN <<EOF
echo heredoc > /opt/heredoc
echo second line >> /opt/heredoc
EOF
COPY <<EOT /opt/inline.txt
inline $HOME
EOT
RUN --mount=type=cache,target=/cache,id=berth-e2e echo run >> /cache/runs && cp /cache/runs /opt/runs
RUN --mount=type=bind,source=sub,target=/mnt/sub --mount=type=tmpfs,target=/scratch sh -c 'cat /mnt/sub/a/x.txt > /opt/bind; touch /scratch/t; grep -c " /scratch " /proc/mounts >> /opt/bind'
RUN --network=none sh -c 'ip link 2>/dev/null | grep -c ": " || ls /sys/class/net | wc -l' > /opt/ifaces
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s CMD true
VOLUME /data

FROM base AS final
RUN cat /etc/hosts | grep -c buildhost > /opt/hosts || true
RUN rm /etc/group && rm -rf /opt/inner && mkdir -p /opt/inner/fresh && ln /opt/heredoc /opt/hardlink && chmod 700 /opt/inner
ONBUILD RUN echo triggered > /opt/onbuild
`,
	})
	out := d.mustBuild(dk, nil, "--add-host", "buildhost:10.1.2.3", "--label", "via=docker", "-t", "instr:1", dir)
	got := d.output(dk, "run", "--rm", "instr:1", "sh", "-c",
		"cat /opt/remote.txt /opt/heredoc /opt/inline.txt /opt/runs /opt/ifaces /opt/hosts /opt/onbuild 2>&1; ls -A /opt/inner; stat -c '%a %h' /opt/inner /opt/hardlink; ls /etc/group 2>&1; true")
	want := payload + "heredoc\nsecond line\ninline \nrun\n1\n1\ncat: can't open '/opt/onbuild': No such file or directory\nfresh\n700 3\n644 2\nls: /etc/group: No such file or directory\n"
	if got != want {
		t.Fatalf("instr:1 files:\n%q\nwant\n%q\nbuild output:\n%s", got, want, out)
	}
	insp := d.output(dk, "image", "inspect", "--format", "{{.Config.StopSignal}}|{{.Config.Volumes}}|{{.Config.OnBuild}}|{{.Config.Healthcheck.Test}}|{{index .Config.Labels \"via\"}}", "instr:1")
	if strings.TrimSpace(insp) != "SIGUSR1|map[/data:{}]|[RUN echo triggered > /opt/onbuild]|[CMD-SHELL true]|docker" {
		t.Fatalf("inspect instr:1: %q", insp)
	}
	// The cache mount persists between builds and is never in a layer.
	d.mustBuild(dk, nil, "--no-cache", "-t", "instr:2", dir)
	if got := d.output(dk, "run", "--rm", "instr:2", "sh", "-c", "cat /opt/runs /opt/bind; ls -d /cache /mnt /scratch 2>&1; true"); got != "run\nrun\nx1\nls: /cache: No such file or directory\nls: /mnt: No such file or directory\nls: /scratch: No such file or directory\n" {
		t.Fatalf("cache mount: %q", got)
	}

	tdirEarly := buildDir(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo classic > /c\n"})
	// berth build: a Dockerfile on stdin (-f -), ONBUILD of the base, -q,
	// --iidfile, --target.
	child := "FROM instr:1\nRUN cat /opt/onbuild\n"
	iid := filepath.Join(t.TempDir(), "iid")
	o, e, code := d.cli(bt, strings.NewReader(child), "build", "-q", "--iidfile", iid, "-f", "-", "-t", "child:1", dir)
	if code != 0 {
		t.Fatalf("berth build -f -: %d %s %s", code, o, e)
	}
	b, _ := os.ReadFile(iid)
	if !strings.HasPrefix(string(b), "sha256:") || strings.TrimSpace(o) != string(b) {
		t.Fatalf("-q output %q, iidfile %q", o, b)
	}
	if got := d.output(bt, "run", "--rm", "child:1", "sh", "-c", "cat /opt/onbuild; find /par /pile -type f | sort"); got != "triggered\n/par/sub/a/x.txt\n/par/sub/b/y.txt\n/pile/keep.txt\n" {
		t.Fatalf("onbuild trigger: %q", got)
	}
	// Without DOCKER_BUILDKIT the docker CLI (no buildx plugin) asks
	// /_ping, sees Builder-Version 1 and uses the classic builder.
	t.Setenv("DOCKER_BUILDKIT", "0")
	os.Unsetenv("DOCKER_BUILDKIT")
	o, e, code = d.cli(dk, nil, "build", "-q", tdirEarly)
	if code != 0 || !strings.HasPrefix(o, "sha256:") {
		t.Fatalf("docker build without DOCKER_BUILDKIT: %d %q %q", code, o, e)
	}
	// Resource limits apply to RUN containers.
	mdir := buildDir(t, map[string]string{"Dockerfile": "FROM busybox\nRUN (cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) > /mem\n"})
	d.mustBuild(dk, nil, "-m", "64m", "-t", "mem:1", mdir)
	if got := d.output(dk, "run", "--rm", "mem:1", "cat", "/mem"); got != "67108864\n" {
		t.Fatalf("RUN memory limit: %q", got)
	}
	// docker build - < Dockerfile: no context.
	o, e, code = d.dockerBuild(strings.NewReader("FROM busybox\nRUN echo from-stdin > /f\n"), "-t", "stdin:1", "-")
	if code != 0 {
		t.Fatalf("docker build -: %d %s %s", code, o, e)
	}
	if got := d.output(dk, "run", "--rm", "stdin:1", "cat", "/f"); got != "from-stdin\n" {
		t.Fatalf("stdin build: %q", got)
	}
	// --target stops at a stage.
	tdir := buildDir(t, map[string]string{"Dockerfile": "FROM busybox AS one\nRUN echo one > /which\nFROM one AS two\nRUN echo two > /which\n"})
	d.mustBuild(bt, nil, "--target", "one", "-t", "target:1", tdir)
	if got := d.output(bt, "run", "--rm", "target:1", "cat", "/which"); got != "one\n" {
		t.Fatalf("--target: %q", got)
	}
	// ARG scoping: a global ARG is seen in a stage only once redeclared;
	// ENV wins over ARG; an undeclared build arg is reported unused.
	adir := buildDir(t, map[string]string{"Dockerfile": "ARG G=global\nFROM busybox\nRUN echo \"[$G]\" > /g1\nARG G\nRUN echo \"[$G]\" > /g2\nARG E=arg\nENV E=env\nRUN echo $E > /g3\n"})
	out = d.mustBuild(bt, nil, "--progress=classic", "--build-arg", "UNUSED=1", "-t", "args:1", adir)
	if !strings.Contains(out, "[Warning] One or more build-args [UNUSED] were not consumed") {
		t.Fatalf("unused build arg not reported:\n%s", out)
	}
	if got := d.output(bt, "run", "--rm", "args:1", "cat", "/g1", "/g2", "/g3"); got != "[]\n[global]\nenv\n" {
		t.Fatalf("ARG scoping: %q", got)
	}
	// Identical steps of independent stages are computed once.
	ddir := buildDir(t, map[string]string{"Dockerfile": "FROM busybox AS a\nRUN echo dedup > /x\nFROM busybox AS b\nRUN echo dedup > /x\nFROM busybox\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n"})
	out = d.mustBuild(bt, nil, "--progress=classic", "-t", "dedup:1", ddir)
	if n := strings.Count(out, "Running in"); n != 1 {
		t.Fatalf("identical RUN steps ran %d times:\n%s", n, out)
	}
	if got := d.output(bt, "run", "--rm", "dedup:1", "cat", "/a", "/b"); got != "dedup\ndedup\n" {
		t.Fatalf("dedup image: %q", got)
	}
	// --output: the filesystem instead of an image.
	outDir := filepath.Join(t.TempDir(), "out")
	before := d.output(bt, "images", "-aq")
	d.mustBuild(bt, nil, "--target", "one", "-o", "type=local,dest="+outDir, tdir)
	if b, err := os.ReadFile(filepath.Join(outDir, "which")); err != nil || string(b) != "one\n" {
		t.Fatalf("--output type=local: %q %v", b, err)
	}
	// FROM scratch: layers on nothing.
	sdir := buildDir(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY f /data/f\nCOPY --from=busybox --chmod=600 /etc/passwd /passwd\nCMD [\"/f\"]\n", "f": "scratch file"})
	sOut := filepath.Join(t.TempDir(), "s")
	d.mustBuild(bt, nil, "-o", "type=local,dest="+sOut, sdir)
	if b, err := os.ReadFile(filepath.Join(sOut, "data", "f")); err != nil || string(b) != "scratch file" {
		t.Fatalf("FROM scratch: %q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(sOut, "passwd")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("COPY --from=image --chmod: %v %v", fi, err)
	}
	o, e, code = d.cli(bt, nil, "build", "--target", "two", "-o", "-", tdir)
	if code != 0 || !strings.Contains(o, "which") || !strings.Contains(o, "two\n") || !strings.Contains(e, "[two 2/2] RUN echo two > /which") {
		t.Fatalf("--output -: %d %q...", code, e)
	}
	if after := d.output(bt, "images", "-aq"); after != before {
		t.Fatalf("--output left an image: %q, before %q", after, before)
	}
	o, e, code = d.cli(bt, nil, "build", "--target", "nosuch", tdir)
	if code == 0 || !strings.Contains(o+e, "nosuch") {
		t.Fatalf("--target nosuch: %d %q %q", code, o, e)
	}
	o, e, code = d.cli(bt, nil, "build", "--platform", "linux/s390x", tdir)
	if code == 0 || !strings.Contains(o+e, "native platform") {
		t.Fatalf("--platform foreign: %d %q %q", code, o, e)
	}
	if ps := d.output(dk, "ps", "-aq"); ps != "" {
		t.Fatalf("intermediate containers left: %q", ps)
	}
}

// TestBuildErrors: malformed Dockerfiles are refused naming the line, a
// failing RUN gives its exit status, a context entry outside the context
// is refused; berthd survives all of them.
func TestBuildErrors(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk, bt := bins.docker, bins.cli
	cases := []struct {
		dockerfile, want string
		code             int
	}{
		{"FROM busybox\nRUN true\nFROBNICATE x\n", "line 3", 1},
		{"RUN true\n", "line 1", 1},
		{"FROM busybox\nCOPY missing.txt /\n", "missing.txt", 1},
		{"FROM busybox\nRUN exit 3\n", "returned a non-zero code: 3", 3},
		{"FROM busybox\nHEALTHCHECK --interval=x CMD true\n", "line 2", 1},
		{"FROM nosuch-image-xyz\n", "nosuch-image-xyz", 1},
		{"FROM busybox\nCOPY a b /c\n", "Dockerfile:2: When using COPY with more than one source file", 1},
		{"FROM busybox AS a\nFROM busybox\nARG S=a\nCOPY --from=$S /etc/passwd /p\n", "Dockerfile:4: COPY --from=$S is empty: --from may use only global ARGs", 1},
		{"ARG S=a\nFROM busybox AS a\nRUN echo from-a > /a\nFROM busybox\nCOPY --from=$S /a /a\nRUN exit 4\n", "returned a non-zero code: 4", 4},
	}
	for _, bin := range []string{dk, bt} {
		for _, c := range cases {
			dir := buildDir(t, map[string]string{"Dockerfile": c.dockerfile, "a": "a", "b": "b"})
			o, e, code := d.dockerBuild(nil, dir)
			if bin == bt {
				o, e, code = d.cli(bt, nil, "build", dir)
			}
			if code != c.code || !strings.Contains(o+e, c.want) {
				t.Errorf("%s build of %q: exit %d (want %d), output %q %q (want %q)", filepath.Base(bin), c.dockerfile, code, c.code, o, e, c.want)
			}
		}
	}
	// A context that reaches outside itself.
	for _, name := range []string{"../escape", "a/../../escape"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		df := "FROM busybox\nCOPY . /\n"
		tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))})
		tw.Write([]byte(df))
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 4})
		tw.Write([]byte("evil"))
		tw.Close()
		res, err := d.client.ImageBuild(context.Background(), &buf, client.ImageBuildOptions{Tags: []string{"escape:1"}})
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			err = fmt.Errorf("%s", b)
			if !strings.Contains(string(b), "outside the context") {
				t.Errorf("context with %q: %s", name, b)
			}
		} else if !strings.Contains(err.Error(), "outside the context") {
			t.Errorf("context with %q: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(d.dataRoot, "build", "escape")); err == nil {
			t.Errorf("%q was written outside the context", name)
		}
	}
	// Garbage for a context, a truncated tar.
	for _, body := range [][]byte{{0x1f, 0x8b, 0, 1, 2}, bytes.Repeat([]byte("ustar"), 200)} {
		res, err := d.client.ImageBuild(context.Background(), bytes.NewReader(body), client.ImageBuildOptions{})
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	if _, err := d.client.Ping(context.Background(), client.PingOptions{}); err != nil {
		t.Fatalf("berthd died: %v", err)
	}
	if ps := d.output(dk, "ps", "-aq"); ps != "" {
		t.Fatalf("intermediate containers left: %q", ps)
	}
}

// TestBuildSecret: `berth build --secret` values are visible to the RUN
// that mounts them (as a file or a variable) and are found nowhere in the
// saved image, its history or config.
func TestBuildSecret(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	bt := bins.cli
	t.Setenv("BERTH_E2E_TOKEN", "env-s3cr3t")
	dir := buildDir(t, map[string]string{
		"tok.txt": "s3cr3t-value",
		"Dockerfile": `FROM busybox
RUN --mount=type=secret,id=tok,required cat /run/secrets/tok | wc -c > /len
RUN --mount=type=secret,id=envtok,env=TOKEN echo ${#TOKEN} > /ok
RUN --mount=type=secret,id=tok,target=/etc/app/key cp /etc/app/key /copied-on-purpose-no && rm /copied-on-purpose-no
`,
	})
	d.mustBuild(bt, nil, "--secret", "id=tok,src="+filepath.Join(dir, "tok.txt"), "--secret", "id=envtok,env=BERTH_E2E_TOKEN", "-t", "sec:1", dir)
	if got := d.output(bt, "run", "--rm", "sec:1", "sh", "-c", "cat /len /ok; ls /run/secrets /etc/app 2>&1; true"); !strings.HasPrefix(got, "12\n10\nls: /run/secrets: No such file or directory\nls: /etc/app: No such file or directory") {
		t.Fatalf("image content: %q", got)
	}
	var saved bytes.Buffer
	o, e, code := d.cli(bt, nil, "save", "sec:1")
	if code != 0 {
		t.Fatalf("save: %s", e)
	}
	saved.WriteString(o)
	hist := d.output(bt, "history", "--no-trunc", "sec:1")
	insp := d.output(bt, "image", "inspect", "sec:1")
	for _, secret := range []string{"s3cr3t-value", "env-s3cr3t"} {
		if bytes.Contains(saved.Bytes(), []byte(secret)) || strings.Contains(hist, secret) || strings.Contains(insp, secret) {
			t.Fatalf("secret %q leaked into the image", secret)
		}
	}
	// A required secret that was not given fails the build.
	o, e, code = d.cli(bt, nil, "build", "--no-cache", dir)
	if code == 0 || !strings.Contains(o+e, "secret tok: not provided") {
		t.Fatalf("build without the secret: %d %q %q", code, o, e)
	}
}

// TestBuildConcurrent: two builds of the same Dockerfile at once, through
// both CLIs, share their steps (each RUN runs once) and both succeed.
func TestBuildConcurrent(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dir := buildDir(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo one > /one\nCOPY f /f\nRUN cat /one /f > /both\n",
		"f":          "f\n",
	})
	type result struct {
		out, err string
		code     int
	}
	res := make(chan result, 2)
	go func() {
		o, e, c := d.cli(bins.cli, nil, "build", "--progress=classic", "-t", "conc:a", dir)
		res <- result{o, e, c}
	}()
	go func() {
		o, e, c := d.cli(bins.docker, nil, "build", "-t", "conc:b", dir)
		res <- result{o, e, c}
	}()
	runs := 0
	for i := 0; i < 2; i++ {
		r := <-res
		if r.code != 0 {
			t.Fatalf("concurrent build: %d %s %s", r.code, r.out, r.err)
		}
		runs += strings.Count(r.out, "Running in")
	}
	if runs != 2 {
		t.Fatalf("the two RUN steps ran %d times in all", runs)
	}
	a := d.output(bins.cli, "image", "inspect", "--format", "{{.Id}}", "conc:a")
	b := d.output(bins.cli, "image", "inspect", "--format", "{{.Id}}", "conc:b")
	if a != b {
		t.Fatalf("the same build gave %s and %s", a, b)
	}
	if got := d.output(bins.cli, "run", "--rm", "conc:a", "cat", "/both"); got != "one\nf\n" {
		t.Fatalf("conc:a: %q", got)
	}
}

// TestBuildKilledDaemon: berthd killed with -9 in the middle of a RUN
// leaves nothing behind once it is back: no intermediate container, no
// mount, and the same build then succeeds.
func TestBuildKilledDaemon(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dir := buildDir(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY f /f\nRUN touch /started && sleep 300\n",
		"f":          "f",
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.cli(bins.cli, nil, "build", "-t", "killed:1", dir)
	}()
	waitFor(t, "the RUN container", 20*time.Second, func() bool {
		o, _, _ := d.cli(bins.cli, nil, "ps", "-q", "--filter", "label=berth.build")
		return strings.TrimSpace(o) != ""
	})
	d.kill9()
	<-done
	d.start()
	if o := d.output(bins.cli, "ps", "-aq"); o != "" {
		t.Fatalf("containers left after restart: %q", o)
	}
	if m := mountsUnder(filepath.Join(d.dataRoot, "build")); len(m) > 0 {
		t.Fatalf("mounts left: %v", m)
	}
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM busybox\nCOPY f /f\nRUN echo ok > /ok\n")
	d.mustBuild(bins.cli, nil, "-t", "killed:1", dir)
	if got := d.output(bins.cli, "run", "--rm", "killed:1", "cat", "/ok"); got != "ok\n" {
		t.Fatalf("build after restart: %q", got)
	}
}

// TestBuildPullsBase: a base image that is not present is pulled from its
// registry (loopback, with the credentials the CLI sends in
// X-Registry-Config), and --pull pulls again; through both CLIs.
func TestBuildPullsBase(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	reg := startRegistry(t)
	for _, c := range clis() {
		ref := fmt.Sprintf("%s/e2e-build-%s/base:1", reg, c.name)
		if o, e, code := d.cli(c.bin, strings.NewReader("interop\n"), "login", reg, "-u", "ci", "--password-stdin"); code != 0 {
			t.Fatalf("login: %q %q", o, e)
		}
		d.output(c.bin, "tag", "busybox", ref)
		d.output(c.bin, "push", ref)
		d.output(c.bin, "rmi", ref)
		dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN echo pulled > /p\n"})
		d.t.Setenv("DOCKER_BUILDKIT", "0")
		d.output(c.bin, "build", "-t", "pulled-"+c.name, dir)
		if got := d.output(c.bin, "run", "--rm", "pulled-"+c.name, "cat", "/p"); got != "pulled\n" {
			t.Fatalf("%s: %q", c.name, got)
		}
		d.output(c.bin, "build", "--pull", "-t", "pulled-"+c.name, dir)
		d.output(c.bin, "logout", reg)
	}
}
