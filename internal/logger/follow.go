package logger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// follower streams the current file as it grows. When the writer renames
// the file away (rotation) the follower drains the old descriptor, emits
// any rotated file that is newer than the one it was reading (it was
// rotated more than once while the follower slept), and continues with
// the new current file: no record is lost or repeated. With max-file=1
// the writer truncates instead; the follower then restarts at offset 0.
type follower struct {
	r      *fileReader
	rc     ReadConfig
	fn     func(*Message) error
	m      *Message
	f      *os.File
	rr     *recordReader
	lastTS int64
}

// errUntil ends a follow at the first record after Until.
var errUntil = errors.New("past until")

const followPoll = 250 * time.Millisecond

func (fl *follower) run(ctx context.Context) error {
	defer func() {
		if fl.f != nil {
			closeQuietly(fl.f)
		}
	}()
	w := newWatcher(filepath.Dir(fl.r.path))
	defer w.close()
	var woken atomic.Bool
	quit := make(chan struct{})
	defer close(quit)
	var untilC <-chan time.Time
	if !fl.rc.Until.IsZero() {
		t := time.NewTimer(time.Until(fl.rc.Until))
		defer t.Stop()
		untilC = t.C
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-fl.rc.Stopped:
		case <-untilC:
		case <-quit:
			return
		}
		woken.Store(true)
		w.wake()
	}()
	if fl.f != nil {
		fl.rr = newRecordReader(fl.f, fl.r.fmt)
	}
	for {
		stopped := isClosed(fl.rc.Stopped)
		err := fl.drain(ctx)
		if errors.Is(err, errUntil) {
			return nil
		}
		if err != nil {
			return err
		}
		switched, err := fl.checkRotation()
		if errors.Is(err, errUntil) {
			return nil
		}
		if err != nil {
			return err
		}
		if switched {
			continue
		}
		if stopped {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fl.rc.Until.IsZero() && time.Now().After(fl.rc.Until) {
			return nil
		}
		w.wait(&woken, followPoll)
	}
}

func isClosed(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// drain emits every complete record available now.
func (fl *follower) drain(ctx context.Context) error {
	if fl.rr == nil {
		return nil
	}
	for n := 1; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil { // a writer faster than us
			return ctx.Err()
		}
		rec, err := fl.rr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("logger: follow %s: %w", fl.r.path, err)
		}
		if err := fl.deliver(rec); err != nil {
			return err
		}
	}
}

func (fl *follower) deliver(rec []byte) error {
	if err := fl.r.fmt.decode(rec, fl.m); err != nil {
		return nil // damaged record: skipped, as in a plain read
	}
	if !fl.rc.Until.IsZero() && fl.m.Timestamp.After(fl.rc.Until) {
		return errUntil
	}
	fl.lastTS = fl.m.Timestamp.UnixNano()
	if !inRange(fl.rc, fl.m.Timestamp) {
		return nil
	}
	return fl.fn(fl.m)
}

// checkRotation reports whether the follower moved to another file.
func (fl *follower) checkRotation() (bool, error) {
	if fl.f == nil {
		f, err := os.Open(fl.r.path)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("logger: follow: %w", err)
		}
		fl.f, fl.rr = f, newRecordReader(f, fl.r.fmt)
		return true, nil
	}
	st, err := os.Stat(fl.r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // renamed, the new file is not there yet
	}
	if err != nil {
		return false, fmt.Errorf("logger: follow: %w", err)
	}
	old, err := fl.f.Stat()
	if err != nil {
		return false, fmt.Errorf("logger: follow: %w", err)
	}
	if os.SameFile(st, old) {
		pos, err := fl.f.Seek(0, io.SeekCurrent)
		if err != nil {
			return false, fmt.Errorf("logger: follow: %w", err)
		}
		if st.Size() < pos-int64(fl.rr.pending()) { // truncated (max-file=1)
			if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
				return false, fmt.Errorf("logger: follow: %w", err)
			}
			fl.rr.reset(fl.f)
			return true, nil
		}
		return false, nil
	}
	// Rotated: whatever the writer put in the old file is there by now.
	if err := fl.drain(context.Background()); err != nil {
		return false, err
	}
	newer, cur, err := fl.r.openAfter(old, fl.lastTS)
	if err != nil {
		return false, err
	}
	defer closeSegments(newer)
	closeQuietly(fl.f)
	fl.f = cur
	for _, s := range newer {
		if err := fl.r.emit(context.Background(), s, ReadConfig{}, fl.m, func(m *Message) error {
			if s.first == -1 && m.Timestamp.UnixNano() <= fl.lastTS {
				return nil
			}
			if !fl.rc.Until.IsZero() && m.Timestamp.After(fl.rc.Until) {
				return errUntil
			}
			fl.lastTS = m.Timestamp.UnixNano()
			if !inRange(fl.rc, m.Timestamp) {
				return nil
			}
			return fl.fn(m)
		}); err != nil {
			return false, err
		}
	}
	if cur != nil {
		fl.rr.reset(cur)
	} else {
		fl.rr = nil
	}
	return true, nil
}

// openAfter opens, under the directory lock, the rotated files written
// after the file old (identified by inode, or for a compressed file by
// its last timestamp) and the current file. When old is gone altogether
// every rotated file is returned marked first=-1: the caller filters on
// timestamps after lastTS.
func (r *fileReader) openAfter(old os.FileInfo, lastTS int64) ([]*segment, *os.File, error) {
	unlock, err := lockLog(r.path, false)
	if err != nil {
		return nil, nil, fmt.Errorf("logger: lock log: %w", err)
	}
	defer unlock()
	var segs []*segment
	found := false
	for i := 1; ; i++ {
		s, err := openRotated(rotatedName(r.path, i))
		if err != nil {
			closeSegments(segs)
			return nil, nil, fmt.Errorf("logger: follow: %w", err)
		}
		if s == nil {
			break
		}
		mine := false
		if s.gz {
			mine = lastTS != 0 && s.last == lastTS
		} else if st, err := s.f.Stat(); err == nil {
			mine = os.SameFile(st, old)
		}
		if mine {
			closeQuietly(s.f)
			found = true
			break
		}
		segs = append([]*segment{s}, segs...)
	}
	for _, s := range segs {
		if !found {
			s.first = -1
		}
		if !s.gz {
			st, err := s.f.Stat()
			if err != nil {
				closeSegments(segs)
				return nil, nil, fmt.Errorf("logger: follow: %w", err)
			}
			if s.end, err = r.fmt.trimEnd(newBlockCache(s.f), 0, st.Size()); err != nil {
				closeSegments(segs)
				return nil, nil, fmt.Errorf("logger: follow: %w", err)
			}
		}
	}
	cur, err := os.Open(r.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		closeSegments(segs)
		return nil, nil, fmt.Errorf("logger: follow: %w", err)
	}
	if err != nil {
		cur = nil
	}
	return segs, cur, nil
}

// watcher wakes a follower when its log directory changes (inotify),
// with a poll interval as a floor; without inotify it only polls.
type watcher struct {
	f   *os.File // nil: polling
	ch  chan struct{}
	buf []byte
}

// wait returns after a change, after max, or soon after wake.
func (w *watcher) wait(woken *atomic.Bool, max time.Duration) {
	if w.f == nil {
		t := time.NewTimer(max)
		defer t.Stop()
		select {
		case <-t.C:
		case <-w.ch:
		}
		return
	}
	_ = w.f.SetReadDeadline(time.Now().Add(max))
	if woken.Load() { // set before our deadline: do not sleep
		return
	}
	_, _ = w.f.Read(w.buf)
}

// wake interrupts wait; callers set their flag first.
func (w *watcher) wake() {
	if w.f == nil {
		select {
		case w.ch <- struct{}{}:
		default:
		}
		return
	}
	_ = w.f.SetReadDeadline(time.Unix(1, 0))
}

func (w *watcher) close() {
	if w.f != nil {
		closeQuietly(w.f)
	}
}
