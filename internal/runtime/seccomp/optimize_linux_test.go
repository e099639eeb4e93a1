//go:build cgo

package seccomp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestOptimizedProgramDecidesAlike compiles profiles with libseccomp's
// binary-tree layout (what buildFilter uses) and with its default linear
// layout, runs both programs in a classic-BPF interpreter over every
// syscall number of every architecture the filter knows (and one it does
// not), with argument values taken from the profile's conditions, and
// requires the same return value (action and errno) for each input.
func TestOptimizedProgramDecidesAlike(t *testing.T) {
	profiles := map[string]*specs.LinuxSeccomp{
		"docker-default": dockerDefault(t),
		"conditions": {
			DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read", "write", "close", "exit_group"}, Action: specs.ActAllow},
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x0, Op: specs.OpEqualTo}}},
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
				{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7e020000, Op: specs.OpMaskedEqual}}},
				{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EACCES)), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 16, Op: specs.OpEqualTo}, {Index: 2, Value: 9, Op: specs.OpEqualTo}}},
				{Names: []string{"bind"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 40, Op: specs.OpNotEqual}}},
				{Names: []string{"mmap"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 7, Op: specs.OpLessThan}}},
				{Names: []string{"mprotect"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 4, Op: specs.OpLessEqual}}},
				{Names: []string{"ioctl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0x5401, Op: specs.OpGreaterThan}}},
				{Names: []string{"fcntl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 1 << 33, Op: specs.OpGreaterEqual}}},
				{Names: []string{"kill"}, Action: specs.ActKill},
				{Names: []string{"ptrace"}, Action: specs.ActTrace},
				{Names: []string{"getpid", "gettid"}, Action: specs.ActLog},
			},
		},
	}
	for name, s := range profiles {
		t.Run(name, func(t *testing.T) {
			p, err := convert(s)
			if err != nil {
				t.Fatal(err)
			}
			compileWith := func(tree bool) []byte {
				old := optimizeTree
				optimizeTree = tree
				defer func() { optimizeTree = old }()
				f, err := compileFilter(p)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			linear, tree := compileWith(false), compileWith(true)
			if bytes.Equal(linear, tree) {
				t.Fatal("both layouts gave the same program: the comparison would prove nothing")
			}
			t.Logf("linear %d instructions, tree %d", len(linear)/8, len(tree)/8)
			values := argValues(s)
			arches := []uint32{auditArchX86_64, auditArchI386, 0xdeadbeef}
			var checked int
			for _, arch := range arches {
				for _, base := range []uint32{0, x32Bit} {
					for nr := base; nr < base+1024; nr++ {
						checked += compareAt(t, linear, tree, arch, nr, values)
					}
				}
				checked += compareAt(t, linear, tree, arch, 0xffffffff, values)
			}
			t.Logf("%d inputs decided alike", checked)
		})
	}
}

const (
	auditArchX86_64 = 0xc000003e
	auditArchI386   = 0x40000003
	x32Bit          = 0x40000000
)

// argValues are the values worth trying in the arguments: 0, all ones,
// and each constant of the profile's conditions with its neighbours.
func argValues(s *specs.LinuxSeccomp) []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	add := func(v uint64) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	add(0)
	add(^uint64(0))
	add(0xffffffff)
	for _, sc := range s.Syscalls {
		for _, a := range sc.Args {
			for _, v := range []uint64{a.Value, a.ValueTwo} {
				add(v)
				add(v + 1)
				add(v - 1)
				add(v | 1<<32)
			}
		}
	}
	return out
}

// compareAt runs both programs on syscall nr of arch with all arguments
// zero, then with each argument in turn set to each value; it returns how
// many inputs it compared.
func compareAt(t *testing.T, a, b []byte, arch, nr uint32, values []uint64) int {
	t.Helper()
	var args [6]uint64
	n := 0
	check := func() {
		n++
		data := seccompData(nr, arch, 0x1000, args)
		ra, ea := runBPF(a, data)
		rb, eb := runBPF(b, data)
		if ea != nil || eb != nil {
			t.Fatalf("nr %#x arch %#x args %v: %v / %v", nr, arch, args, ea, eb)
		}
		if ra != rb {
			t.Fatalf("nr %#x arch %#x args %#x: linear program returns %#x, tree %#x", nr, arch, args, ra, rb)
		}
	}
	check()
	for i := range args {
		for _, v := range values {
			args = [6]uint64{}
			args[i] = v
			check()
		}
	}
	return n
}

// seccompData lays out struct seccomp_data (native byte order).
func seccompData(nr, arch uint32, ip uint64, args [6]uint64) []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[0:], nr)
	binary.NativeEndian.PutUint32(b[4:], arch)
	binary.NativeEndian.PutUint64(b[8:], ip)
	for i, v := range args {
		binary.NativeEndian.PutUint64(b[16+8*i:], v)
	}
	return b
}

// runBPF interprets a classic BPF program (struct sock_filter[], native
// order) as the kernel runs a seccomp filter over data.
func runBPF(prog, data []byte) (uint32, error) {
	var a, x uint32
	var mem [16]uint32
	n := len(prog) / 8
	for pc := 0; pc < n; pc++ {
		ins := prog[pc*8:]
		code := binary.NativeEndian.Uint16(ins[0:])
		jt, jf := int(ins[2]), int(ins[3])
		k := binary.NativeEndian.Uint32(ins[4:])
		load := func(off uint32) (uint32, error) {
			if off%4 != 0 || int(off)+4 > len(data) {
				return 0, fmt.Errorf("pc %d: load at %d", pc, off)
			}
			return binary.NativeEndian.Uint32(data[off:]), nil
		}
		src := k
		if code&unix.BPF_X != 0 {
			src = x
		}
		var err error
		switch code & 0x07 {
		case unix.BPF_LD:
			switch code &^ 0x07 {
			case unix.BPF_W | unix.BPF_ABS:
				a, err = load(k)
			case unix.BPF_IMM:
				a = k
			case unix.BPF_MEM:
				a = mem[k&15]
			case unix.BPF_W | unix.BPF_LEN:
				a = uint32(len(data))
			default:
				return 0, fmt.Errorf("pc %d: unknown load %#x", pc, code)
			}
		case unix.BPF_LDX:
			switch code &^ 0x07 {
			case unix.BPF_IMM:
				x = k
			case unix.BPF_MEM:
				x = mem[k&15]
			case unix.BPF_W | unix.BPF_LEN:
				x = uint32(len(data))
			default:
				return 0, fmt.Errorf("pc %d: unknown ldx %#x", pc, code)
			}
		case unix.BPF_ST:
			mem[k&15] = a
		case unix.BPF_STX:
			mem[k&15] = x
		case unix.BPF_ALU:
			switch code & 0xf0 {
			case unix.BPF_ADD:
				a += src
			case unix.BPF_SUB:
				a -= src
			case unix.BPF_MUL:
				a *= src
			case unix.BPF_DIV:
				if src == 0 {
					return 0, nil
				}
				a /= src
			case unix.BPF_MOD:
				if src == 0 {
					return 0, nil
				}
				a %= src
			case unix.BPF_OR:
				a |= src
			case unix.BPF_AND:
				a &= src
			case unix.BPF_XOR:
				a ^= src
			case unix.BPF_LSH:
				a <<= src & 31
			case unix.BPF_RSH:
				a >>= src & 31
			case unix.BPF_NEG:
				a = -a
			default:
				return 0, fmt.Errorf("pc %d: unknown alu %#x", pc, code)
			}
		case unix.BPF_JMP:
			var cond bool
			switch code & 0xf0 {
			case unix.BPF_JA:
				pc += int(k)
				continue
			case unix.BPF_JEQ:
				cond = a == src
			case unix.BPF_JGT:
				cond = a > src
			case unix.BPF_JGE:
				cond = a >= src
			case unix.BPF_JSET:
				cond = a&src != 0
			default:
				return 0, fmt.Errorf("pc %d: unknown jump %#x", pc, code)
			}
			if cond {
				pc += jt
			} else {
				pc += jf
			}
		case unix.BPF_RET:
			if code&0x18 == unix.BPF_A {
				return a, nil
			}
			return k, nil
		case unix.BPF_MISC:
			if code&0xf8 == unix.BPF_TAX {
				x = a
			} else {
				a = x
			}
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("ran off the end of the program")
}

// TestRunBPF checks the interpreter itself on the installed filter's
// behaviour: the Docker profile allows read and refuses a syscall outside
// the native and compat ABIs with the bad-arch action (kill).
func TestRunBPF(t *testing.T) {
	p, err := convert(dockerDefault(t))
	if err != nil {
		t.Fatal(err)
	}
	f, err := compileFilter(p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runBPF(f, seccompData(unix.SYS_READ, auditArchX86_64, 0, [6]uint64{}))
	if err != nil || r != unix.SECCOMP_RET_ALLOW {
		t.Fatalf("read: %#x, %v", r, err)
	}
	// A syscall number no rule names: the default action (errno EPERM).
	r, err = runBPF(f, seccompData(1000, auditArchX86_64, 0, [6]uint64{}))
	if err != nil || r != unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM) {
		t.Fatalf("syscall 1000: %#x, %v", r, err)
	}
	r, err = runBPF(f, seccompData(unix.SYS_READ, 0xdeadbeef, 0, [6]uint64{}))
	if err != nil || r&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_KILL_THREAD && r&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_KILL_PROCESS {
		t.Fatalf("foreign arch: %#x, %v", r, err)
	}
}
