// Package logger owns container log drivers: the writers that run in
// berth-shim and the readers that serve `docker logs` in berthd.
//
// # Entry points
//
// The shim calls New(cfg) for a Logger and feeds it with a Copier, which
// reads the container's stdout/stderr pipes (or a pty master, one stream
// "stdout"), cuts lines (16 KiB partial chunks like Docker), stamps them
// and fans the raw bytes out to attached clients. The daemon calls
// ValidateConfig at create time, Path for inspect's LogPath, and
// NewReader(cfg).ReadLogs for `docker logs` (tail, since, until,
// follow). Both sides build the same Config.
//
// # Drivers
//
//   - json-file: Docker's format, byte for byte ({"log":"text\n",
//     "stream":"stdout","attrs":{...},"time":"RFC3339Nano"}, Docker's
//     escaping; "attrs" holds the labels/env attributes and, only when
//     the tag option is set, "tag"), in <Dir>/<ContainerID>-json.log, rotated to .1, .2, …
//     and gzip-compressed to .1.gz, … with compress=true. BERTH DIFFERS:
//     Docker's default is one unbounded file; berth's default is
//     max-size=10m and max-file=5 (each defaulted on its own; max-size=-1
//     asks for Docker's unbounded file).
//   - local: same options and rotation (labels/env/tag attributes too, as
//     in current Docker), defaults max-size=20m (MiB as in Docker),
//     max-file=5, compress=true, in <Dir>/local-logs/container.log.
//     BERTH DIFFERS: Docker frames protobuf entries; berth uses its own
//     compact binary framing (see localFormat), so files are not
//     interchangeable with Docker's. Path returns "" as Docker's inspect
//     does.
//   - none: discards; reading fails.
//   - syslog: one message per record to syslog-address (unix, unixgram,
//     udp, tcp; default the local /dev/log), syslog-facility,
//     syslog-format ""/rfc3164/rfc5424/rfc5424micro, tag. BERTH DIFFERS:
//     tcp+tls is refused as not implemented; the timestamp is the
//     record's, not the send time.
//   - journald: native protocol on /run/systemd/journal/socket (no
//     libsystemd), Docker's fields (CONTAINER_ID, CONTAINER_ID_FULL,
//     CONTAINER_NAME, CONTAINER_TAG, IMAGE_NAME, SYSLOG_IDENTIFIER,
//     MESSAGE, PRIORITY, SYSLOG_TIMESTAMP, CONTAINER_PARTIAL_MESSAGE and
//     the labels/env attributes). BERTH DIFFERS: it cannot be read back
//     (Docker reads the journal through libsystemd).
//
// Options common to all drivers, mode and max-buffer-size, are accepted
// and ignored: berth always logs in blocking mode.
//
// # Reading
//
// Message.Line never holds the newline; Partial means the output had none
// after it. Records within a container's files are in timestamp order
// (the Copier takes the time and calls Log under one lock), which lets
// the reader bisect: Since/Until cost O(log size) probes, Tail N reads
// backwards from the end in blocks, so `logs --tail 10` of a 200 MB log
// reads tens of KiB (TestReadCost counts them, BenchmarkRead times them). Compressed rotated files carry
// their first and last timestamps in the gzip header and are only
// decompressed when the answer reaches into them.
//
// Writers and readers live in different processes. The writer appends
// each record with one write(2), renames files under an exclusive flock
// of <current file>.lock, and readers open the set of files under a shared
// one, so a reader never sees half a rotation; a torn record at the end
// of the current file is ignored until complete, a damaged one inside a
// file is skipped. A follower watches the directory with inotify (a
// 250 ms poll when inotify instances run out), drains the old file
// after a rotation and catches up through any newer rotated file, so it
// neither loses nor repeats records unless the writer deleted files it
// had not read yet (max-file too small for a slow client).
//
// # What it must not do
//
// The writer side runs in every shim: no reflection on the hot path, no
// goroutine per message, buffers reused, one goroutine per stream and one
// per rotation compression; a slow attach client slows only its stream.
// The package does not decide where Dir is, does not know containers'
// state (the daemon closes ReadConfig.Stopped), and does not map errors
// to HTTP codes (errors carry errdefs classes).
package logger
