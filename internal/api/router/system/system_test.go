package system_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	apisystem "github.com/moby/moby/api/types/system"

	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/api/router/system"
)

func TestEventsShapes(t *testing.T) {
	f := apitest.NewSystem()
	now := time.Now()
	f.Recorded = []events.Message{
		{Type: events.ContainerEventType, Action: events.ActionStart, Actor: events.Actor{ID: "c1", Attributes: map[string]string{"image": "busybox"}}, Time: now.Unix(), TimeNano: now.UnixNano()},
		{Type: events.ImageEventType, Action: events.ActionCreate, Actor: events.Actor{ID: "sha256:1"}, Time: now.Unix(), TimeNano: now.UnixNano()},
	}
	srv := apitest.NewServer(t, system.New(f))
	until := now.Add(time.Second).Unix()
	// API 1.50: legacy fields, and the image create event (new in 1.46) is kept.
	w := apitest.Do(t, srv, "GET", "/v1.50/events?until="+itoa(until), nil)
	lines := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || len(lines) != 2 {
		t.Fatalf("%d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
	var m map[string]any
	json.Unmarshal([]byte(lines[0]), &m)
	if m["status"] != "start" || m["id"] != "c1" || m["from"] != "busybox" || m["Type"] != "container" {
		t.Fatalf("legacy event %v", m)
	}
	// API 1.45 drops image create events; 1.52 has no legacy fields.
	if w := apitest.Do(t, srv, "GET", "/v1.45/events?until="+itoa(until), nil); strings.Count(w.Body.String(), "\n") != 1 {
		t.Fatalf("1.45: %q", w.Body.String())
	}
	w = apitest.Do(t, srv, "GET", "/v1.52/events?until="+itoa(until), nil, "Accept", "application/json-seq")
	if w.Header().Get("Content-Type") != "application/json-seq" || !strings.HasPrefix(w.Body.String(), "\x1e{") || strings.Contains(w.Body.String(), `"status"`) {
		t.Fatalf("json-seq: %q %q", w.Header().Get("Content-Type"), w.Body.String())
	}
	w = apitest.Do(t, srv, "GET", `/events?filters={"type":["container"]}&until=`+itoa(until), nil, "Accept", "application/x-ndjson")
	if w.Header().Get("Content-Type") != "application/x-ndjson" || strings.Count(w.Body.String(), "\n") != 1 {
		t.Fatalf("filtered: %q", w.Body.String())
	}
	for target, msg := range map[string]string{
		`/events?filters={"nope":["x"]}`: "invalid filter 'nope'",
		`/events?since=20&until=10`:      "`since` time (20) cannot be after `until` time (10)",
		`/events?since=yesterday`:        `invalid value for since: "yesterday"`,
	} {
		w := apitest.Do(t, srv, "GET", target, nil)
		if w.Code != 400 || !strings.HasPrefix(apitest.Message(t, w), msg) {
			t.Errorf("%s: %d %q", target, w.Code, w.Body.String())
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestDiskUsageVersions(t *testing.T) {
	srv := apitest.NewServer(t, system.New(apitest.NewSystem()))
	w := apitest.Do(t, srv, "GET", "/v1.50/system/df", nil)
	var legacy map[string]json.RawMessage
	json.Unmarshal(w.Body.Bytes(), &legacy)
	for _, k := range []string{"LayersSize", "Images", "Containers", "Volumes", "BuildCache", "ImageUsage"} {
		if _, ok := legacy[k]; !ok {
			t.Errorf("1.50 df lacks %s: %s", k, w.Body.String())
		}
	}
	w = apitest.Do(t, srv, "GET", "/v1.56/system/df?type=image", nil)
	var du apisystem.DiskUsage
	json.Unmarshal(w.Body.Bytes(), &du)
	if du.ImageUsage == nil || du.ImageUsage.TotalCount != 2 || du.ImageUsage.Items != nil || du.ContainerUsage != nil || bytes.Contains(w.Body.Bytes(), []byte("LayersSize")) {
		t.Fatalf("1.56 df: %s", w.Body.String())
	}
	w = apitest.Do(t, srv, "GET", "/system/df?type=image&verbose=1", nil)
	json.Unmarshal(w.Body.Bytes(), &du)
	if len(du.ImageUsage.Items) != 1 {
		t.Fatalf("verbose df: %s", w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", "/system/df?type=bogus", nil); w.Code != 400 || apitest.Message(t, w) != "unknown object type: bogus" {
		t.Fatalf("bogus type: %d %s", w.Code, w.Body.String())
	}
}

func TestVersionAndStubs(t *testing.T) {
	srv := apitest.NewServer(t, system.New(apitest.NewSystem()))
	w := apitest.Do(t, srv, "GET", "/version", nil)
	var v apisystem.VersionResponse
	json.Unmarshal(w.Body.Bytes(), &v)
	if v.APIVersion != "1.56" || v.MinAPIVersion != "1.40" || len(v.Components) != 1 || v.Components[0].Name != "Engine" || v.Components[0].Details["ApiVersion"] != "1.56" || v.GoVersion == "" {
		t.Fatalf("version %+v", v)
	}
	for _, tc := range []struct {
		method, target string
		code           int
		body           string
	}{
		{"GET", "/plugins", 200, "[]\n"},
		{"GET", "/plugins/foo/json", 404, `{"message":"plugin \"foo\" not found"}` + "\n"},
		{"POST", "/plugins/pull", 501, `{"message":"plugins are not supported by berth"}` + "\n"},
		{"GET", "/nodes", 503, `{"message":"This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."}` + "\n"},
		{"POST", "/swarm/leave", 503, `{"message":"This node is not part of a swarm"}` + "\n"},
		{"POST", "/swarm/init", 501, `{"message":"swarm mode is not supported by berth"}` + "\n"},
		{"GET", "/secrets/abc", 503, ""},
		{"POST", "/session", 501, ""},
	} {
		w := apitest.Do(t, srv, tc.method, tc.target, nil)
		if w.Code != tc.code || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("%s %s: %d %q", tc.method, tc.target, w.Code, w.Body.String())
		}
	}
}

func TestAuth(t *testing.T) {
	srv := apitest.NewServer(t, system.New(apitest.NewSystem()))
	w := apitest.Do(t, srv, "POST", "/auth", strings.NewReader(`{"username":"alice","password":"secret","serveraddress":"r"}`), "Content-Type", "application/json")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"Status":"Login Succeeded"`) {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	w = apitest.Do(t, srv, "POST", "/auth", strings.NewReader(`{"username":"alice","password":"no"}`), "Content-Type", "application/json")
	if w.Code != 401 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

type componentsBackend struct{ *apitest.System }

func (componentsBackend) SystemVersion(ctx context.Context) (*apisystem.VersionResponse, error) {
	return &apisystem.VersionResponse{Version: "9", Os: "linux", Arch: "arm64", GoVersion: "go1",
		Components: []apisystem.ComponentVersion{{Name: "Engine", Version: "9", Details: map[string]string{"GitCommit": "own"}}, {Name: "runc", Version: "1"}}}, nil
}

func TestVersionFillsEngineDetails(t *testing.T) {
	srv := apitest.NewServer(t, system.New(componentsBackend{apitest.NewSystem()}))
	w := apitest.Do(t, srv, "GET", "/version", nil)
	var v apisystem.VersionResponse
	json.Unmarshal(w.Body.Bytes(), &v)
	d := v.Components[0].Details
	if len(v.Components) != 2 || d["GitCommit"] != "own" || d["Experimental"] != "false" || d["Arch"] != "arm64" || d["ApiVersion"] != "1.56" || d["MinAPIVersion"] != "1.40" {
		t.Fatalf("components %+v", v.Components)
	}
}
