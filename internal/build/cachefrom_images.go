package build

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/image"
)

// fromImages is the classic builder's --cache-from: a source image whose
// history and layers begin with the current state's, and whose next
// history entry is what this step writes, gives the step's result: the
// current config with that history entry and, unless it is an empty
// layer, the source's next layer.
func (imp *cacheImport) fromImages(d *dispatcher, desc string) *image.State {
	if len(imp.images) == 0 {
		return nil
	}
	createdBy, meta := d.historyOf(desc)
	cur := d.st
	n := len(cur.Config.History)
	for _, src := range imp.images {
		if len(src.Config.History) <= n || len(src.Layers) < len(cur.Layers) {
			continue
		}
		if !sameHistory(cur.Config.History, src.Config.History[:n]) || !sameLayers(cur.Layers, src.Layers[:len(cur.Layers)]) {
			continue
		}
		h := src.Config.History[n]
		if h.CreatedBy != createdBy || meta && !h.EmptyLayer {
			continue
		}
		st := cur.Clone()
		if !h.EmptyLayer {
			if len(src.Layers) <= len(cur.Layers) {
				continue
			}
			st.Layers = append(st.Layers, src.Layers[len(cur.Layers)])
		}
		st.Config.History = append(st.Config.History, h)
		st.Config.Created = h.Created
		return st
	}
	return nil
}

// historyOf is the history entry (created_by) a step described as desc
// writes, and whether it is metadata only (an empty layer): RUN writes
// its command line (prefixed with the build arguments it sees), COPY, ADD
// and WORKDIR "#(nop) " and the instruction, the others "#(nop)  " and
// the instruction.
func (d *dispatcher) historyOf(desc string) (string, bool) {
	switch {
	case strings.HasPrefix(desc, "RUN "):
		cmd := strings.TrimPrefix(desc, "RUN ")
		if env := d.argsEnv(); len(env) > 0 {
			cmd = fmt.Sprintf("|%d %s %s", len(env), strings.Join(env, " "), cmd)
		}
		return cmd, false
	case strings.HasPrefix(desc, "COPY "), strings.HasPrefix(desc, "ADD "), strings.HasPrefix(desc, "WORKDIR "):
		return "/bin/sh -c #(nop) " + desc, false
	}
	return "/bin/sh -c #(nop)  " + desc, true
}

func sameHistory(a, b []ocispec.History) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].CreatedBy != b[i].CreatedBy || a[i].EmptyLayer != b[i].EmptyLayer || a[i].Comment != b[i].Comment || a[i].Author != b[i].Author {
			return false
		}
	}
	return true
}

func sameLayers(a, b []image.Layer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].DiffID != b[i].DiffID {
			return false
		}
	}
	return true
}
