package initproc

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The spec a pre-forked init gets ahead of its config (MsgSpec) is the
// bundle's config.json as it is, seccomp profile included: the runtime
// does not encode it again. The init never uses the profile (it gets the
// filter compiled), so it is skipped, not decoded: in Docker's default
// profile that is ~350 syscall names and two thirds of the file.

// specNoSeccomp decodes a spec with linux.seccomp skipped: its outer
// Linux field takes "linux" (the shallower field wins in encoding/json),
// and linuxNoSeccomp's Seccomp field takes "seccomp".
type specNoSeccomp struct {
	specs.Spec
	Linux *linuxNoSeccomp `json:"linux,omitempty"`
}

type linuxNoSeccomp struct {
	specs.Linux
	Seccomp skipped `json:"seccomp,omitempty"`
}

// skipped is a JSON value decoded into nothing; present says whether
// there was one other than null.
type skipped struct{ present bool }

func (s *skipped) UnmarshalJSON(b []byte) error {
	s.present = string(b) != "null"
	return nil
}

// DecodeSpec decodes the config.json data into a spec whose
// linux.seccomp, when there is one, is an empty LinuxSeccomp: present, not
// decoded (the init installs the filter the runtime compiled and refuses
// to run a config that has a profile without it). A missing linux becomes
// an empty one, as create makes it.
func DecodeSpec(data []byte) (*specs.Spec, error) {
	var s specNoSeccomp
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	spec := s.Spec
	spec.Linux = &specs.Linux{}
	if s.Linux != nil {
		l := s.Linux.Linux
		if s.Linux.Seccomp.present {
			l.Seccomp = &specs.LinuxSeccomp{}
		}
		spec.Linux = &l
	}
	return &spec, nil
}
