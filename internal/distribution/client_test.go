package distribution

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestInsecureHosts(t *testing.T) {
	c := New(Options{Insecure: []string{"reg.internal:5000", "10.1.0.0/16"}})
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "[::1]:5000": true, "127.3.4.5": true,
		"reg.internal:5000": true, "10.1.2.3:443": true, "10.2.0.1": false, "docker.io": false, "reg.internal": false,
	} {
		if got := c.insecure(host); got != want {
			t.Errorf("insecure(%s) = %v, want %v", host, got, want)
		}
	}
}

func TestMirrorCandidates(t *testing.T) {
	c := New(Options{Mirrors: map[string][]string{
		"docker.io":      {"http://127.0.0.1:5001", "mirror.example:443"},
		"127.0.0.1:5000": {"127.0.0.1:5002"},
	}})
	ref, err := c.ParseReference("docker.io/library/busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range c.candidates(ref) {
		got = append(got, r.Context().Registry.Scheme()+"://"+r.String())
	}
	want := []string{
		"http://127.0.0.1:5001/library/busybox:latest",
		"https://mirror.example:443/library/busybox:latest",
		"https://docker.io/library/busybox:latest",
	}
	if len(got) != len(want) {
		t.Fatalf("candidates %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("candidate %d = %s, want %s", i, got[i], want[i])
		}
	}
	d, _ := c.ParseReference("127.0.0.1:5000/app@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	cs := c.candidates(d)
	if len(cs) != 2 || cs[0].(name.Digest).Context().RegistryStr() != "127.0.0.1:5002" {
		t.Fatalf("digest mirror candidates: %v", cs)
	}
	if _, err := c.ParseReference("UPPER/Case:x"); err == nil {
		t.Fatal("invalid reference accepted")
	}
}
