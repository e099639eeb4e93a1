package logger_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/logger"
)

// The shim's side: a Logger fed by a Copier, with an attached client.
// The daemon's side: a LogReader answering `docker logs --tail 2`.
func Example() {
	dir, _ := os.MkdirTemp("", "logger-example-")
	defer os.RemoveAll(dir)
	cfg := logger.Config{Type: "json-file", Dir: dir, ContainerID: "4f2a9c0e7b1d", Opts: map[string]string{"max-size": "1m"}}
	if err := logger.ValidateConfig(cfg); err != nil { // at create time
		panic(err)
	}

	// In berth-shim: the container's pipes ("stderr" too without a tty;
	// one stream here so that the output order is fixed).
	l, err := logger.New(cfg)
	if err != nil {
		panic(err)
	}
	c := logger.NewCopier(l, map[string]io.Reader{"stdout": strings.NewReader("one\ntwo\nthree\n")})
	var attached strings.Builder
	detach := c.Attach("stdout", &attached) // before Run: sees everything
	c.Run()
	if err := c.Wait(); err != nil { // the streams ended
		panic(err)
	}
	detach()
	_ = l.Close()
	fmt.Printf("attached client got %q\n", attached.String())

	// In berthd: docker logs --tail 2.
	r, err := logger.NewReader(cfg)
	if err != nil {
		panic(err)
	}
	stopped := make(chan struct{})
	close(stopped) // the container has exited: a follow would end here
	err = r.ReadLogs(context.Background(), logger.ReadConfig{Tail: 2, Stopped: stopped}, func(m *logger.Message) error {
		fmt.Printf("%s: %s\n", m.Source, m.Line)
		return nil
	})
	fmt.Println(err, logger.Path(cfg) == dir+"/4f2a9c0e7b1d-json.log")
	// Output:
	// attached client got "one\ntwo\nthree\n"
	// stdout: two
	// stdout: three
	// <nil> true
}
