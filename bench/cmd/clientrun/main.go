// Command clientrun is bench/compare-cli.sh's reference: it runs
// `run --rm --network none IMAGE CMD...` through the Go client in a warm
// process, with the requests berth run --rm sends (create with AutoRemove;
// attach to stdout and stderr and wait for removal, sent together; start;
// the wait's result and the end of the output), so that the berth CLI's
// own share — process start-up, command-line parsing, the first
// connection and version negotiation — is the difference between the two.
//
//	clientrun [-n N] [-warmup W] IMAGE [CMD ARG...]
//
// The endpoint is BERTH_HOST (else DOCKER_HOST). It runs W untimed runs,
// then N timed ones, and prints each one's wall time in ms, one a line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func main() {
	n := flag.Int("n", 1, "timed runs")
	warmup := flag.Int("warmup", 2, "untimed runs first")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: clientrun [-n N] [-warmup W] IMAGE [CMD ARG...]")
		os.Exit(2)
	}
	host := os.Getenv("BERTH_HOST")
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	api, err := client.New(client.WithHost(host))
	if err != nil {
		fail(err)
	}
	defer api.Close()
	ctx := context.Background()
	for i := 0; i < *warmup+*n; i++ {
		t0 := time.Now()
		if err := runRm(ctx, api, flag.Arg(0), flag.Args()[1:]); err != nil {
			fail(err)
		}
		if i >= *warmup {
			fmt.Println(strconv.FormatFloat(float64(time.Since(t0).Microseconds())/1000, 'f', 2, 64))
		}
	}
}

func runRm(ctx context.Context, api *client.Client, image string, cmd []string) error {
	res, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: image, Cmd: cmd, AttachStdout: true, AttachStderr: true},
		HostConfig: &container.HostConfig{NetworkMode: "none", AutoRemove: true},
	})
	if err != nil {
		return err
	}
	var (
		ar       client.ContainerAttachResult
		arErr    error
		attached = make(chan struct{})
	)
	go func() {
		defer close(attached)
		ar, arErr = api.ContainerAttach(ctx, res.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	}()
	wait := api.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	<-attached
	if arErr != nil {
		return arErr
	}
	defer ar.Close()
	streamDone := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(io.Discard, os.Stderr, ar.Reader)
		streamDone <- err
	}()
	if _, err := api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	if err := <-streamDone; err != nil {
		return err
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 0 {
			return fmt.Errorf("exit status %d", r.StatusCode)
		}
		return nil
	case err := <-wait.Error:
		return errors.Join(errors.New("wait"), err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "clientrun:", err)
	os.Exit(1)
}
