package image_test

import (
	"encoding/json"
	"testing"

	"github.com/berth-dev/berth/internal/api/apitest"
)

// TestInspectLegacyFields: before API 1.45 image inspect carries
// Container and ContainerConfig (docker-compose 1.29 indexes
// ContainerConfig), before 1.44 VirtualSize; newer versions have none.
func TestInspectLegacyFields(t *testing.T) {
	_, _, r := newRouter(t)
	srv := apitest.NewServer(t, r)
	for _, c := range []struct {
		path                                  string
		container, containerConfig, virtualSz bool
	}{
		{"/v1.41/images/busybox/json", true, true, true},
		{"/v1.44/images/busybox/json", true, true, false},
		{"/v1.45/images/busybox/json", false, false, false},
		{"/images/busybox/json", false, false, false},
	} {
		w := apitest.Do(t, srv, "GET", c.path, nil)
		var m map[string]json.RawMessage
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &m) != nil {
			t.Fatalf("%s: %d %s", c.path, w.Code, w.Body.String())
		}
		_, hasC := m["Container"]
		cc, hasCC := m["ContainerConfig"]
		_, hasV := m["VirtualSize"]
		if hasC != c.container || hasCC != c.containerConfig || hasV != c.virtualSz {
			t.Errorf("%s: Container %v ContainerConfig %v VirtualSize %v", c.path, hasC, hasCC, hasV)
		}
		if hasCC {
			var cfg map[string]any
			if json.Unmarshal(cc, &cfg) != nil || cfg == nil {
				t.Errorf("%s: ContainerConfig %s is not an object", c.path, cc)
			}
		}
		if _, ok := m["Id"]; !ok {
			t.Errorf("%s: no Id: %s", c.path, w.Body.String())
		}
	}
}
