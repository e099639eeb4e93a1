package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
)

// parallelGzip writes one gzip member whose deflate stream is compressed
// in independent blocks by several goroutines. Each block is primed with
// the last 32 KiB of the block before it (a preset dictionary), so matches
// may still reach back across the boundary, and ends with a sync flush so
// the blocks concatenate into one valid stream. Block boundaries depend
// only on the input, so the output is deterministic whatever the number of
// CPUs: the same layer always gets the same blob digest.
type parallelGzip struct {
	w       io.Writer
	level   int
	block   []byte // input being gathered
	dict    []byte // tail of the previous block
	crc     uint32
	size    uint32 // input length mod 2^32, as gzip records it
	started bool

	queue   chan *gzBlock // blocks in output order
	writerD chan struct{} // closed when the output goroutine ends
	mu      sync.Mutex
	err     error // first write error of the output goroutine
	closed  bool
}

type gzBlock struct {
	out  *bytes.Buffer
	done chan struct{}
	err  error
}

const (
	gzBlockSize = 1 << 20
	gzDictSize  = 32 << 10
)

var (
	flateWriters sync.Pool // *flate.Writer, keyed by nothing: level is checked on use
	gzBuffers    = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

type pooledFlate struct {
	level int
	fw    *flate.Writer
}

func newParallelGzip(w io.Writer, level int) *parallelGzip {
	return &parallelGzip{w: w, level: level}
}

func (z *parallelGzip) start() {
	z.started = true
	z.queue = make(chan *gzBlock, runtime.GOMAXPROCS(0)+1)
	z.writerD = make(chan struct{})
	go z.output()
}

// output writes finished blocks in order: header, blocks, trailer.
func (z *parallelGzip) output() {
	defer close(z.writerD)
	header := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}
	_, err := z.w.Write(header)
	for b := range z.queue {
		<-b.done
		if err == nil {
			err = b.err
		}
		if err == nil {
			_, err = z.w.Write(b.out.Bytes())
		}
		b.out.Reset()
		gzBuffers.Put(b.out)
		if err != nil {
			z.mu.Lock()
			if z.err == nil {
				z.err = err
			}
			z.mu.Unlock()
		}
	}
}

func (z *parallelGzip) failed() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *parallelGzip) Write(p []byte) (int, error) {
	if z.closed {
		return 0, errors.New("gzip: write after close")
	}
	if !z.started {
		z.start()
	}
	if err := z.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		if z.block == nil {
			z.block = make([]byte, 0, gzBlockSize)
		}
		m := min(len(p), gzBlockSize-len(z.block))
		z.block = append(z.block, p[:m]...)
		p = p[m:]
		if len(z.block) == gzBlockSize {
			z.dispatch(false)
		}
	}
	return n, nil
}

// dispatch hands the gathered block to a compressing goroutine. The queue's
// capacity bounds how far input may run ahead of output.
func (z *parallelGzip) dispatch(final bool) {
	in := z.block
	z.block = nil
	z.crc = crc32.Update(z.crc, crc32.IEEETable, in)
	z.size += uint32(len(in))
	dict := z.dict
	if len(in) >= gzDictSize {
		z.dict = in[len(in)-gzDictSize:]
	} else {
		z.dict = append(append([]byte(nil), dict...), in...)
		if len(z.dict) > gzDictSize {
			z.dict = z.dict[len(z.dict)-gzDictSize:]
		}
	}
	b := &gzBlock{out: gzBuffers.Get().(*bytes.Buffer), done: make(chan struct{})}
	z.queue <- b
	go func() {
		defer close(b.done)
		b.err = compressBlock(b.out, z.level, dict, in, final)
	}()
}

func compressBlock(out *bytes.Buffer, level int, dict, in []byte, final bool) error {
	var fw *flate.Writer
	if p, ok := flateWriters.Get().(*pooledFlate); ok && p.level == level {
		fw = p.fw
		fw.ResetDict(out, dict)
	} else {
		var err error
		if fw, err = flate.NewWriterDict(out, level, dict); err != nil {
			return err
		}
	}
	if _, err := fw.Write(in); err != nil {
		return err
	}
	var err error
	if final {
		err = fw.Close()
	} else {
		err = fw.Flush()
	}
	flateWriters.Put(&pooledFlate{level: level, fw: fw})
	return err
}

// Close compresses what is left, writes the trailer and waits for all
// goroutines. It does not close the underlying writer.
func (z *parallelGzip) Close() error {
	if z.closed {
		return z.failed()
	}
	if !z.started {
		z.start()
	}
	z.closed = true
	z.dispatch(true)
	close(z.queue)
	<-z.writerD
	if err := z.failed(); err != nil {
		return err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], z.crc)
	binary.LittleEndian.PutUint32(trailer[4:], z.size)
	_, err := z.w.Write(trailer[:])
	return err
}
