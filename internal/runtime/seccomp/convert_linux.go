//go:build cgo

package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// flagTSYNC is the spec name of SECCOMP_FILTER_FLAG_TSYNC. runtime-spec
// documents the flag but specs-go has no constant for it.
const flagTSYNC specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

// maxArgIndex is the highest syscall argument index seccomp can inspect.
const maxArgIndex = 5

// maxRetData is the largest value that fits in SECCOMP_RET_DATA (the errno of
// SCMP_ACT_ERRNO, the message of SCMP_ACT_TRACE).
const maxRetData = unix.SECCOMP_RET_DATA

// actions maps every action name runtime-spec defines to libseccomp. The
// errno of SCMP_ACT_ERRNO/SCMP_ACT_TRACE is filled in by actionFor.
// SCMP_ACT_KILL keeps its historical meaning, SECCOMP_RET_KILL, which the
// kernel defines as SECCOMP_RET_KILL_THREAD.
var actions = map[specs.LinuxSeccompAction]libseccomp.ScmpAction{
	specs.ActKill:        libseccomp.ActKillThread,
	specs.ActKillProcess: libseccomp.ActKillProcess,
	specs.ActKillThread:  libseccomp.ActKillThread,
	specs.ActTrap:        libseccomp.ActTrap,
	specs.ActErrno:       libseccomp.ActErrno,
	specs.ActTrace:       libseccomp.ActTrace,
	specs.ActAllow:       libseccomp.ActAllow,
	specs.ActLog:         libseccomp.ActLog,
	specs.ActNotify:      libseccomp.ActNotify,
}

// operators maps runtime-spec comparison operators to libseccomp.
var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// arches maps runtime-spec architecture names to libseccomp. Whether the
// linked libseccomp really handles an architecture is only known when it is
// added to a filter (see buildFilter and supportedArches).
var arches = map[specs.Arch]libseccomp.ScmpArch{
	specs.ArchX86:         libseccomp.ArchX86,
	specs.ArchX86_64:      libseccomp.ArchAMD64,
	specs.ArchX32:         libseccomp.ArchX32,
	specs.ArchARM:         libseccomp.ArchARM,
	specs.ArchAARCH64:     libseccomp.ArchARM64,
	specs.ArchMIPS:        libseccomp.ArchMIPS,
	specs.ArchMIPS64:      libseccomp.ArchMIPS64,
	specs.ArchMIPS64N32:   libseccomp.ArchMIPS64N32,
	specs.ArchMIPSEL:      libseccomp.ArchMIPSEL,
	specs.ArchMIPSEL64:    libseccomp.ArchMIPSEL64,
	specs.ArchMIPSEL64N32: libseccomp.ArchMIPSEL64N32,
	specs.ArchPPC:         libseccomp.ArchPPC,
	specs.ArchPPC64:       libseccomp.ArchPPC64,
	specs.ArchPPC64LE:     libseccomp.ArchPPC64LE,
	specs.ArchS390:        libseccomp.ArchS390,
	specs.ArchS390X:       libseccomp.ArchS390X,
	specs.ArchPARISC:      libseccomp.ArchPARISC,
	specs.ArchPARISC64:    libseccomp.ArchPARISC64,
	specs.ArchRISCV64:     libseccomp.ArchRISCV64,
	specs.ArchLOONGARCH64: libseccomp.ArchLOONGARCH64,
	specs.ArchM68K:        libseccomp.ArchM68K,
	specs.ArchSH:          libseccomp.ArchSH,
	specs.ArchSHEB:        libseccomp.ArchSHEB,
}

// filterFlags maps the runtime-spec filter flags to the seccomp(2) flag bits.
var filterFlags = map[specs.LinuxSeccompFlag]uint{
	flagTSYNC:                              unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// program is a runtime-spec seccomp config with every name resolved to its
// libseccomp or kernel value. Syscall names are kept as strings: they are
// resolved against the running architecture when the filter is built.
type program struct {
	defaultAction libseccomp.ScmpAction
	arches        []libseccomp.ScmpArch
	// flags are the seccomp(2) flag bits the config asks for; flagNames
	// are the same flags by name, in config order, for error messages.
	flags     uint
	flagNames []specs.LinuxSeccompFlag
	rules     []rule
	// notify is true when some action (default or rule) is SCMP_ACT_NOTIFY.
	notify bool
}

// rule is one syscall name with its action and conditions. Each element of
// condSets becomes one libseccomp rule whose conditions must all match;
// the rules for a syscall are alternatives. A nil condSets means the rule
// is unconditional.
type rule struct {
	syscall  string
	action   libseccomp.ScmpAction
	condSets [][]libseccomp.ScmpCondition
}

// actionFor resolves a runtime-spec action and its optional errno. errnoRet
// is only accepted for SCMP_ACT_ERRNO and SCMP_ACT_TRACE and defaults to
// EPERM there, as runtime-spec requires. where names the field for errors.
func actionFor(name specs.LinuxSeccompAction, errnoRet *uint, where string) (libseccomp.ScmpAction, error) {
	if name == "" {
		return libseccomp.ActInvalid, fmt.Errorf("seccomp: %s: action is empty", where)
	}
	act, ok := actions[name]
	if !ok {
		return libseccomp.ActInvalid, fmt.Errorf("seccomp: %s: unknown action %q", where, name)
	}
	switch act {
	case libseccomp.ActErrno, libseccomp.ActTrace:
		code := uint(unix.EPERM)
		if errnoRet != nil {
			code = *errnoRet
		}
		if code > maxRetData {
			return libseccomp.ActInvalid, fmt.Errorf("seccomp: %s: errnoRet %d for %s is out of range (0-%d)", where, code, name, maxRetData)
		}
		// SetReturnCode keeps the low 16 bits, so values above
		// MaxInt16 reach the kernel unchanged.
		return act.SetReturnCode(int16(uint16(code))), nil
	default:
		if errnoRet != nil {
			return libseccomp.ActInvalid, fmt.Errorf("seccomp: %s: errnoRet is set but action %s does not return an errno (only %s and %s do)", where, name, specs.ActErrno, specs.ActTrace)
		}
		return act, nil
	}
}

// conditionFor resolves one argument comparison. For SCMP_CMP_MASKED_EQ,
// value is the mask and valueTwo the datum compared with the masked
// argument; the other operators only use value.
func conditionFor(arg specs.LinuxSeccompArg, where string) (libseccomp.ScmpCondition, error) {
	op, ok := operators[arg.Op]
	if !ok {
		if arg.Op == "" {
			return libseccomp.ScmpCondition{}, fmt.Errorf("seccomp: %s: op is empty", where)
		}
		return libseccomp.ScmpCondition{}, fmt.Errorf("seccomp: %s: unknown operator %q", where, arg.Op)
	}
	if arg.Index > maxArgIndex {
		return libseccomp.ScmpCondition{}, fmt.Errorf("seccomp: %s: argument index %d is out of range (0-%d)", where, arg.Index, maxArgIndex)
	}
	values := []uint64{arg.Value}
	if op == libseccomp.CompareMaskedEqual {
		values = append(values, arg.ValueTwo)
	}
	cond, err := libseccomp.MakeCondition(arg.Index, op, values...)
	if err != nil {
		return libseccomp.ScmpCondition{}, fmt.Errorf("seccomp: %s: %w", where, err)
	}
	return cond, nil
}

// condSetsFor turns the args of one syscalls[] entry into libseccomp
// condition sets. When every condition is on a different argument they
// form one set (all must match). When an argument is compared more than
// once, each condition becomes its own set, so any of them matching is
// enough: this is how runc and crun read such configs (Docker-style
// profiles list alternative values for one argument this way), and berth
// has to build the same filter from the same bundle.
func condSetsFor(args []specs.LinuxSeccompArg, where string) ([][]libseccomp.ScmpCondition, error) {
	if len(args) == 0 {
		return nil, nil
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(args))
	seen := make(map[uint]bool, len(args))
	repeated := false
	for i, a := range args {
		c, err := conditionFor(a, fmt.Sprintf("%s.args[%d]", where, i))
		if err != nil {
			return nil, err
		}
		if seen[a.Index] {
			repeated = true
		}
		seen[a.Index] = true
		conds = append(conds, c)
	}
	if !repeated {
		return [][]libseccomp.ScmpCondition{conds}, nil
	}
	sets := make([][]libseccomp.ScmpCondition, 0, len(conds))
	for _, c := range conds {
		sets = append(sets, []libseccomp.ScmpCondition{c})
	}
	return sets, nil
}

// convertFlags resolves the flags of a config to seccomp(2) bits; the
// names are those set, each once, in config order.
func convertFlags(fs []specs.LinuxSeccompFlag) (uint, []specs.LinuxSeccompFlag, error) {
	var bits uint
	var names []specs.LinuxSeccompFlag
	for i, f := range fs {
		bit, ok := filterFlags[f]
		if !ok {
			return 0, nil, fmt.Errorf("seccomp: flags[%d]: unknown flag %q", i, f)
		}
		if bits&bit == 0 {
			bits |= bit
			names = append(names, f)
		}
	}
	return bits, names, nil
}

// usesNotify reports whether s uses SCMP_ACT_NOTIFY anywhere, as the
// default or as a rule's action (convert's program.notify).
func usesNotify(s *specs.LinuxSeccomp) bool {
	if s.DefaultAction == specs.ActNotify {
		return true
	}
	for _, sc := range s.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// convert checks every name and value in s and resolves it. It needs
// neither the kernel nor a libseccomp filter, so it is cheap and has no
// side effects.
func convert(s *specs.LinuxSeccomp) (*program, error) {
	if s == nil {
		return nil, errors.New("seccomp: no seccomp config")
	}
	p := &program{}

	if s.DefaultAction == "" {
		return nil, errors.New("seccomp: defaultAction is required")
	}
	def, err := actionFor(s.DefaultAction, s.DefaultErrnoRet, "defaultAction")
	if err != nil {
		return nil, err
	}
	p.defaultAction = def
	p.notify = def == libseccomp.ActNotify

	for i, a := range s.Architectures {
		arch, ok := arches[a]
		if !ok {
			return nil, fmt.Errorf("seccomp: architectures[%d]: unknown architecture %q", i, a)
		}
		p.arches = append(p.arches, arch)
	}

	if p.flags, p.flagNames, err = convertFlags(s.Flags); err != nil {
		return nil, err
	}

	for i, sc := range s.Syscalls {
		where := fmt.Sprintf("syscalls[%d]", i)
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("seccomp: %s: names must contain at least one syscall", where)
		}
		act, err := actionFor(sc.Action, sc.ErrnoRet, where)
		if err != nil {
			return nil, err
		}
		sets, err := condSetsFor(sc.Args, where)
		if err != nil {
			return nil, err
		}
		if act == libseccomp.ActNotify {
			p.notify = true
		}
		for j, name := range sc.Names {
			if name == "" {
				return nil, fmt.Errorf("seccomp: %s.names[%d] is empty", where, j)
			}
			// A rule that repeats the default action changes nothing,
			// and libseccomp refuses it: leave it out.
			if act == def {
				continue
			}
			p.rules = append(p.rules, rule{syscall: name, action: act, condSets: sets})
		}
	}
	return p, nil
}
