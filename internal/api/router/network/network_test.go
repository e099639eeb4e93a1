package network_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/api/filters"
	netrouter "github.com/berth-dev/berth/internal/api/router/network"
	"github.com/berth-dev/berth/internal/errdefs"
)

// fake is an in-memory backend: networks by name.
type fake struct {
	nets      map[string]network.Inspect
	connected map[string]string // container -> network
}

func (f *fake) NetworkList(ctx context.Context, a filters.Args) ([]network.Summary, error) {
	out := []network.Summary{}
	for _, n := range f.nets {
		if a.Len() == 0 || a.Match("name", n.Name) {
			out = append(out, network.Summary{Network: n.Network})
		}
	}
	return out, nil
}

func (f *fake) NetworkInspect(ctx context.Context, id string) (network.Inspect, error) {
	n, ok := f.nets[id]
	if !ok {
		return n, errdefs.Newf(errdefs.NotFound, "network %s not found", id)
	}
	return n, nil
}

func (f *fake) NetworkCreate(ctx context.Context, req network.CreateRequest) (string, error) {
	if _, ok := f.nets[req.Name]; ok {
		return "", errdefs.Newf(errdefs.Conflict, "network with name %s already exists", req.Name)
	}
	f.nets[req.Name] = network.Inspect{Network: network.Network{Name: req.Name, ID: "id-" + req.Name, Driver: "bridge"}}
	return "id-" + req.Name, nil
}

func (f *fake) NetworkRemove(ctx context.Context, id string) error {
	if id == "bridge" {
		return errdefs.Newf(errdefs.Forbidden, "bridge is a pre-defined network and cannot be removed")
	}
	if _, ok := f.nets[id]; !ok {
		return errdefs.Newf(errdefs.NotFound, "network %s not found", id)
	}
	delete(f.nets, id)
	return nil
}

func (f *fake) NetworkConnect(ctx context.Context, id string, req network.ConnectRequest) error {
	f.connected[req.Container] = id
	return nil
}

func (f *fake) NetworkDisconnect(ctx context.Context, id string, req network.DisconnectRequest) error {
	delete(f.connected, req.Container)
	return nil
}

func (f *fake) NetworksPrune(ctx context.Context, a filters.Args) (*network.PruneReport, error) {
	return &network.PruneReport{}, nil
}

func TestRoutes(t *testing.T) {
	f := &fake{nets: map[string]network.Inspect{"bridge": {Network: network.Network{Name: "bridge", ID: "b1"}}}, connected: map[string]string{}}
	h := apitest.NewServer(t, netrouter.New(f))
	js := []string{"Content-Type", "application/json"}
	w := apitest.Do(t, h, "POST", "/networks/create", strings.NewReader(`{"Name":"n1"}`), js...)
	var cr network.CreateResponse
	if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &cr) != nil || cr.ID != "id-n1" {
		t.Fatalf("create: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, h, "POST", "/networks/create", strings.NewReader(`{"Name":"n1"}`), js...); w.Code != 409 {
		t.Fatalf("duplicate: %d", w.Code)
	}
	if w := apitest.Do(t, h, "POST", "/networks/create", strings.NewReader(`{}`), js...); w.Code != 400 {
		t.Fatalf("no name: %d", w.Code)
	}
	w = apitest.Do(t, h, "GET", `/networks?filters={"name":{"n1":true}}`, nil)
	var list []network.Summary
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list) != 1 || list[0].Name != "n1" {
		t.Fatalf("list: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, h, "GET", "/networks/nope", nil); w.Code != 404 || apitest.Message(t, w) != "network nope not found" {
		t.Fatalf("inspect unknown: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, h, "POST", "/networks/n1/connect", strings.NewReader(`{"Container":"c1"}`), js...); w.Code != 200 || f.connected["c1"] != "n1" {
		t.Fatalf("connect: %d", w.Code)
	}
	if w := apitest.Do(t, h, "POST", "/networks/n1/connect", strings.NewReader(`{}`), js...); w.Code != 400 {
		t.Fatalf("connect without a container: %d", w.Code)
	}
	if w := apitest.Do(t, h, "POST", "/networks/n1/disconnect", strings.NewReader(`{"Container":"c1"}`), js...); w.Code != 200 || f.connected["c1"] != "" {
		t.Fatalf("disconnect: %d", w.Code)
	}
	if w := apitest.Do(t, h, "DELETE", "/networks/bridge", nil); w.Code != 403 {
		t.Fatalf("remove predefined: %d", w.Code)
	}
	if w := apitest.Do(t, h, "DELETE", "/networks/n1", nil); w.Code != 204 {
		t.Fatalf("remove: %d", w.Code)
	}
	w = apitest.Do(t, h, "POST", "/networks/prune", nil)
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"NetworksDeleted":[]}` {
		t.Fatalf("prune: %d %s", w.Code, w.Body.String())
	}
}
