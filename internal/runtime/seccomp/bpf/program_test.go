package bpf

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		n       int
		wantErr string
	}{
		{0, "not a whole number"},
		{7, "not a whole number"},
		{9, "not a whole number"},
		{8, ""},
		{MaxInstructions * InsnSize, ""},
		{(MaxInstructions + 1) * InsnSize, "more than the kernel limit"},
	} {
		err := (&Program{Filter: make([]byte, tc.n)}).Check()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%d bytes: %v, want %q", tc.n, err, tc.wantErr)
		}
	}
	if err := (*Program)(nil).Check(); err == nil {
		t.Error("nil program passed Check")
	}
}

func TestInsn(t *testing.T) {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint16(b[8:], 0x15)
	b[10], b[11] = 3, 4
	binary.NativeEndian.PutUint32(b[12:], 0x7fff0000)
	p := &Program{Filter: b}
	if p.Len() != 2 {
		t.Fatalf("Len = %d", p.Len())
	}
	if code, jt, jf, k := p.Insn(1); code != 0x15 || jt != 3 || jf != 4 || k != 0x7fff0000 {
		t.Errorf("Insn(1) = %#x %d %d %#x", code, jt, jf, k)
	}
}

func TestFlagString(t *testing.T) {
	if got := FlagString(0); got != "none" {
		t.Errorf("FlagString(0) = %q", got)
	}
	if got := FlagString(flagLog | flagNewListener | flagWaitKillableRecv | 0x400); got != "LOG|NEW_LISTENER|WAIT_KILLABLE_RECV|0x400" {
		t.Errorf("FlagString = %q", got)
	}
}
