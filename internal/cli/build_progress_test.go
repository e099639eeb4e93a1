package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func TestBuildkitProgress(t *testing.T) {
	df := []byte("FROM busybox AS build\nRUN echo hi\nFROM busybox\nCOPY --from=build /x /x\nCMD [\"x\"]\n")
	var b strings.Builder
	p := newBuildkitProgress(&b, df)
	clock := time.Unix(0, 0)
	p.now = func() time.Time { clock = clock.Add(250 * time.Millisecond); return clock }
	for _, chunk := range []string{
		"Step 1/5 : FROM busybox AS build\n ---> 0123456789ab\n",
		"Step 2/5 : RUN echo hi\n ---> Running in abc\nh", "i\nRemoving intermediate container abc\n ---> 1111\n",
		"Step 3/5 : FROM busybox\n ---> 0123456789ab\n",
		"Step 4/5 : COPY --from=build /x /x\n ---> Using cache\n ---> 2222\n",
		"Step 5/5 : CMD [\"x\"]\n ---> Using cache\n ---> 3333\n",
		"Successfully built 3333\nSuccessfully tagged app:latest\n",
	} {
		p.Write([]byte(chunk))
	}
	p.Close()
	want := `#1 [build 1/2] FROM busybox AS build
#1 DONE 0.2s

#2 [build 2/2] RUN echo hi
#2 0.250 hi
#2 DONE 0.5s

#3 [stage-1 1/3] FROM busybox
#3 DONE 0.2s

#4 [stage-1 2/3] COPY --from=build /x /x
#4 CACHED

#5 [stage-1 3/3] CMD ["x"]
#5 CACHED

#6 exporting to image
#6 writing image 3333 done
#6 naming to app:latest done
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	// Without a Dockerfile (a context from stdin) the totals are left out.
	b.Reset()
	p = newBuildkitProgress(&b, nil)
	p.Write([]byte("Step 1/1 : FROM busybox\n ---> 01\n"))
	p.Close()
	if !strings.HasPrefix(b.String(), "#1 [stage-0 1] FROM busybox\n#1 DONE") {
		t.Fatalf("no totals: %q", b.String())
	}
}

// stageTotalsBuildKit is what stageTotals computed with BuildKit's parser
// before the CLI dropped it: the reference for the differential test.
func stageTotalsBuildKit(t *testing.T, src []byte) map[string]int {
	out := map[string]int{}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		t.Fatalf("buildkit parse: %v", err)
	}
	stages, _, err := instructions.Parse(res.AST, linter.New(&linter.Config{SkipAll: true}))
	if err != nil {
		t.Fatalf("buildkit instructions: %v", err)
	}
	for _, s := range stages {
		out[strings.TrimSpace(s.SourceCode)] = 1 + len(s.Commands)
	}
	return out
}

func TestStageTotalsMatchesBuildKit(t *testing.T) {
	for _, df := range []string{
		"FROM busybox AS build\nRUN echo hi\nFROM busybox\nCOPY --from=build /x /x\nCMD [\"x\"]\n",
		"ARG V=1\n# comment\n\nFROM busybox:${V}\n  RUN a \\\n  b \\\n# inside\n\n  c\nENV A=1 B=2\n",
		"# escape=`\nFROM busybox\nRUN echo a `\n  b\nRUN echo c\\\n",
		"# syntax=docker/dockerfile:1\n# escape=\\\nFROM busybox AS a\nRUN <<EOF\nset -e\nFROM not-a-stage\nEOF\nCOPY <<-\"A\" <<'B' /dst/\n\tx\n\tA\ny\nB\nRUN echo done\n",
		"FROM \\\n  busybox \\\n  AS base\nRUN true\nONBUILD RUN <<X\nFROM inside\nX\nFROM base\nRUN [\"echo\", \"<<EOF\"]\nLABEL a=b\n",
		"\ufeffFROM busybox\r\nRUN a\r\nRUN b \\\r\n  c\r\n",
		"FROM busybox\nRUN 3<<EOF cat\nhi\nEOF\nMAINTAINER me\nHEALTHCHECK NONE\nFROM busybox\nRUN one\n",
	} {
		got, want := stageTotals([]byte(df)), stageTotalsBuildKit(t, []byte(df))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Dockerfile %q:\ngot  %v\nwant %v", df, got, want)
		}
	}
}
