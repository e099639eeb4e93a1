// Package shim is berth-shim, the per-container supervisor, and the client
// berthd uses to drive it.
//
// One shim process runs per container. berthd starts it (Spawn) detached:
// new session, stdio on /dev/null (the shim points its stderr at
// <StateDir>/shim.log itself), reaped by berthd through a pidfd while
// berthd lives and by init after. It is in berthd's cgroup: a service
// manager that kills the whole cgroup on stop (systemd's default
// KillMode=control-group) kills the shims too; berthd's unit wants
// KillMode=process for live restore.
// The shim creates the container by calling the runtime library in-process
// (runtime.CreateContainer), so the container's init is the shim's child:
// the shim reaps it and knows its exit status. It holds the container's
// stdio (pipes, or the pty master received over the runtime's internal
// console socket), writes every output line to the container's log driver
// (package logger, through logger.Copier), fans the raw output out to
// attached clients, runs execs, records the exit (and OOM kills) and
// answers the daemon over a unix socket. It outlives berthd: a restarted
// berthd finds it again with Connect.
//
// With an external OCI runtime (SpawnOpts.OCIRuntime: runc, crun) the
// shim instead runs the runtime's command line (create, start, kill,
// exec --detach, delete) and, being a child subreaper, still reaps the
// init and exec'd processes itself: see task_linux.go (the seam) and
// ociruntime_linux.go (the runc path).
//
// What it must not do: decide policy (restart, health, removal of the
// container's files, network teardown are the daemon's), or keep state a
// restarted daemon could not get back from the state directory.
//
// Entry points: Main (cmd/berth-shim); Spawn, Connect, ReadExit and the
// Client methods (berthd).
//
// # State directory
//
//	shim.sock   the shim's socket, mode 0600 in a 0700 directory (made by
//	            the shim unless it exists); peers are also checked with
//	            SO_PEERCRED (root, or the shim's own uid)
//	shim.pid    the shim's pid while it runs (written just after Spawn's
//	            answer; Client.ShimPid has it at once)
//	shim.log    the shim's stderr (errors; BERTH_TRACE=1 phase timings)
//	exit.json   the container's Exit, written once, atomically (tmp+rename)
//
// # Spawn (berthd ↔ new shim, over an inherited socketpair on fd 3)
//
//	| # | berthd (Spawn)                          | berth-shim                                     |
//	|---|-----------------------------------------|------------------------------------------------|
//	| 1 | socketpair; fork/exec berth-shim <id>   |                                                |
//	|   | (setsid, GOMAXPROCS=1, fd 3 = pair)     |                                                |
//	| 2 | send frame bootConfig                   | read it; in parallel: mkdir StateDir + shim.log|
//	|   |                                         | + listen on shim.sock, and logger.New; pipes;  |
//	|   |                                         | runtime.CreateContainer; receive the pty master|
//	|   |                                         | (terminal); start the output copier            |
//	| 3 | read frame response {pid} or {err,class}| send it; close fd 3; serve; reap; shim.pid     |
//	| 4 | on error or ctx end: close the pair,    | a failed create was already undone; a shim     |
//	|   | wait for the shim to exit (10 s, then   | whose answer cannot be delivered deletes the   |
//	|   | SIGKILL + runtime Delete), remove the   | container and exits                            |
//	|   | state dir it made                       |                                                |
//
// With SpawnOpts.Start (berthd: no attach to register first) the boot
// config asks the shim to start the container as soon as it is created,
// and the answer of step 3 also carries the start's result (started_too,
// pid or start_err): the start request and its round trip are saved.
// With SpawnOpts.Attach too (berthd: exactly one attach to register first,
// docker run's), the shim subscribes the boot connection to the output
// before it starts, answers in the attach's frame (attached: true), and
// the boot connection goes on as that attach's stream (Client.SpawnStream)
// instead of being closed.
//
// Readiness is the answer on the inherited socket: no polling. With
// SpawnOpts.WarmSpare, step 1 was done ahead of time for a spare shim
// (argv without the id) that sits blocked in step 2's read; Spawn hands it
// the boot config and starts the next spare once it has its answer.
//
// A prepared shim (Prepare, SpawnOpts.Prepared) gets a first frame before
// step 2: bootConfig{prefork: {id, runtime root and init, cgroups path,
// namespaces, terminal, stdin}}. It makes the stdio pipes and has the
// runtime pre-fork the container init (runtime.Prefork: cgroups, runtime
// record, the clone into every namespace but the mount namespace, which
// the init makes once it has its config), then reads step 2's frame as
// usual; CreateContainer uses the pre-forked init when it fits the
// config, else releases it and creates the ordinary way. The answer says
// which (response.preforked). EOF instead of the boot config (berthd let
// it go or died) releases the init, its cgroups and record, and the shim
// exits.
//
// A warm spare started with SpawnOpts.Spare gets that prefork frame at
// once, for a container id chosen then (SparePrefork): it pre-forks while
// idle, and ClaimSpare hands it to the create of a container that fits,
// which gets that id. A spare taken for another container gets a second
// prefork frame (Prepare) or a boot config for another id (Spawn): the
// first init is let go in the background, and the shim waits for that
// before it exits.
//
// # Requests (one per connection on shim.sock)
//
// Every frame is a big-endian uint32 length followed by that many bytes of
// JSON. The client sends one request frame; the shim answers with one
// response frame ({"err":msg,"class":errdefs.Class} on failure, classes
// travel end to end). For attach and exec-start the connection then
// carries the stream; every other connection is closed after the answer.
//
//	| op          | request fields             | response            | then                              |
//	|-------------|----------------------------|---------------------|-----------------------------------|
//	| ping        |                            | pid (of the shim)   | close                             |
//	| start       |                            | pid                 | close                             |
//	| state       |                            | pid,status,started, | close                             |
//	|             |                            | exit                |                                   |
//	| wait        |                            | exit (once exited)  | close; a client that hangs up     |
//	|             |                            |                     | stops waiting                     |
//	| attach      | stdin,stdout,stderr,       | {} (start: also     | stream until the container exited |
//	|             | start (start once attached)| started_too, pid or | and its output was drained        |
//	|             |                            | start_err)          |                                   |
//	| resize      | id (exec, "" = container), | {}                  | close                             |
//	|             | h, w                       |                     |                                   |
//	| kill        | sig, all                   | {}                  | close                             |
//	| exec        | id, process, stdin,stdout, | {}                  | close                             |
//	|             | stderr                     |                     |                                   |
//	| exec-start  | id, detach                 | pid                 | stream until the exec exited and  |
//	|             |                            |                     | its output was drained (detached: |
//	|             |                            |                     | close)                            |
//	| exec-state  | id                         | pid,running,code    | close                             |
//	| exec-wait   | id                         | code (once exited)  | close                             |
//	| close-stdin |                            | {}                  | close                             |
//	| shutdown    |                            | {}                  | the shim exits (the client reads  |
//	|             |                            |                     | EOF when it is gone)              |
//
// Streams: without a terminal the shim writes Docker's multiplexed framing
// (8-byte header: stream 1 stdout / 2 stderr, three zero bytes, big-endian
// uint32 length, then the payload), one write per frame; with a terminal,
// raw bytes. What the client writes goes to the process's stdin; its
// CloseWrite (or close) ends its input: for the container that closes
// stdin only with StdinOnce, for an exec always (without a terminal).
// The shim holds output back until the response frame is written, and an
// attach registered before start therefore loses nothing.
//
// # The container's end (in the shim)
//
//	wait4(init) → read the memory cgroup's oom_kill counter (v1 or v2) →
//	[no PID namespace of its own: runtime delete first, which kills the
//	leftovers that could hold the output] → drain the output (2 s at
//	most) → close the log → wake waiters → close attached streams → yield
//	(one P: the waiters answer first) → [own PID namespace: wait until a
//	wait was answered or a shutdown came, at most 100 ms, then runtime
//	delete: drop the container's mount namespace (held since create, so
//	the init's exit did not unmount its tree), remove cgroups and runtime
//	state, poststop hooks] → write exit.json → exit after IdleTimeout
//	(default 30 s) without a request, or on shutdown (which waits for
//	exit.json).
//
// So when Wait returns, no process of the container is left and its log
// is complete; once Shutdown returns, no cgroup or runtime state is left
// either; exit.json is there once the shim is gone.
//
// Exit codes follow Docker: the status, 128+signal when killed by a signal
// (137 for SIGKILL and OOM kills); a container that failed to start
// records 127 (not found), 126 (not executable) or 128, with Error. A
// program that was found and executable but that execve still refused
// (exec format error) is not a failed start: the init writes
// "exec <path>: <error>" to the container's stderr and exits 255, as
// runc's (initproc's finalize).
//
// # Size
//
// A shim is the per-container cost, so it keeps little: one goroutine per
// output stream, one per attached stdin, one per process it reaps (blocked
// in wait4), no HTTP; exited execs are forgotten 5 minutes after they
// exited (at the next Exec), so healthchecks do not make it grow. It runs
// with GOMAXPROCS=1 (set by Spawn; each P costs span caches and a GC
// worker), without the Go runtime's cgroup-aware GOMAXPROCS, without heap
// profiling (GODEBUG=memprofilerate=0, set by Spawn), with GOGC 50.
// Once idle for a second it drops the page-table entries of its binary's
// clean read-only pages (package memtrim: they stay in the page cache,
// shared by every shim), gives glibc's free C heap back (malloc_trim: a
// shim started cold for its container kept ~1.1 MiB of it from the
// create; not while it is a warm spare), and returns its free heap to the
// kernel only if
// a collection ran since the last trim: creating a container allocates
// less than the first heap goal, and a shim that never collected keeps
// less resident than one that did (a first cycle leaves mark bits and
// span sets behind) and never gets the runtime's forced collection every
// 2 minutes. After any collection the text is dropped again a second
// later (a cycle walks the function tables and runs the collector's
// code). Trims run in one long-lived goroutine (a timer goroutine's exit
// would fault function-table pages back in).
//
// A Spawn into a state directory whose shim still answers fails with
// errdefs.AlreadyExists and leaves that shim alone.
package shim
