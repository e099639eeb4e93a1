package cli

import (
	"strings"
	"testing"
	"time"
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
