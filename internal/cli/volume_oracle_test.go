package cli

import "net/http"

// Output-oracle cases for `volume` (run by TestOutputMatchesDocker).
var volumeOutputCases = []outputCase{
	{"volume-create", []string{"volume", "create", "--label", "a=b", "-o", "type=tmpfs", "-o", "device=tmpfs", "-d", "local", "data"}, volumeFixture, true},
	{"volume-create-anonymous", []string{"volume", "create"}, volumeFixture, true},
	{"volume-ls", []string{"volume", "ls"}, volumeFixture, true},
	{"volume-ls-quiet-filter", []string{"volume", "ls", "-q", "--filter", "dangling=true", "--filter", "label=a=b"}, volumeFixture, true},
	{"volume-ls-format", []string{"volume", "ls", "--format", "table {{.Name}}\\t{{.Driver}}\\t{{.Scope}}\\t{{.Mountpoint}}\\t{{.Labels}}\\t{{.Label \"a\"}}"}, volumeFixture, false},
	{"volume-ls-json", []string{"volume", "ls", "--format", "json"}, volumeFixture, false},
	{"volume-inspect", []string{"volume", "inspect", "data"}, volumeFixture, true},
	{"volume-inspect-format", []string{"volume", "inspect", "-f", "{{.Name}} {{.Mountpoint}} {{json .Labels}}", "data"}, volumeFixture, false},
	{"volume-inspect-missing", []string{"volume", "inspect", "data", "ghost"}, volumeFixture, false},
	{"volume-rm", []string{"volume", "rm", "data", "ghost", "busy"}, volumeFixture, true},
	{"volume-rm-force", []string{"volume", "rm", "-f", "data"}, volumeFixture, true},
	{"volume-prune", []string{"volume", "prune", "-f"}, volumeFixture, true},
	{"volume-prune-all", []string{"volume", "prune", "-a", "-f", "--filter", "label=a"}, volumeFixture, true},
	{"volume-ls-args", []string{"volume", "ls", "extra"}, nil, false},
	{"volume-rm-noargs", []string{"volume", "rm"}, nil, false},
	{"volume-prune-args", []string{"volume", "prune", "x"}, nil, false},
	{"volume-create-twoargs", []string{"volume", "create", "a", "b"}, nil, false},
	{"volume-inspect-noargs", []string{"volume", "inspect"}, nil, false},
}

func volumeFixture(f *fakeEngine) {
	vol := func(name string, labels map[string]string) map[string]any {
		return map[string]any{"Name": name, "Driver": "local", "Mountpoint": "/var/lib/berth/volumes/" + name + "/_data",
			"CreatedAt": "2024-01-02T03:04:05Z", "Labels": labels, "Options": nil, "Scope": "local"}
	}
	anon := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f.handle("POST /volumes/create", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, vol("data", map[string]string{"a": "b"}))
	})
	f.reply("GET /volumes", 200, map[string]any{"Volumes": []any{
		vol("zeta", nil), vol("data", map[string]string{"a": "b", "c": "d"}), vol(anon, map[string]string{"com.docker.volume.anonymous": ""}),
	}, "Warnings": nil})
	f.reply("GET /volumes/data", 200, vol("data", map[string]string{"a": "b"}))
	f.reply("GET /volumes/ghost", 404, map[string]string{"message": "get ghost: no such volume"})
	f.reply("DELETE /volumes/data", 204, nil)
	f.reply("DELETE /volumes/ghost", 404, map[string]string{"message": "get ghost: no such volume"})
	f.reply("DELETE /volumes/busy", 409, map[string]string{"message": "remove busy: volume is in use - [aaaa]"})
	f.reply("POST /volumes/prune", 200, map[string]any{"VolumesDeleted": []string{anon, "zeta"}, "SpaceReclaimed": 123456})
}
