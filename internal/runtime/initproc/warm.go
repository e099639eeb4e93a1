package initproc

import (
	"encoding/json"
	"reflect"
)

// WarmJSON encodes and decodes a sync message whose config has every
// field that holds a struct, a pointer, a slice or a map filled in (the
// whole specs.Spec tree). encoding/json builds its per-type field lists
// and coders on first use; in a fresh process the first config costs
// that too (about 0.5–1 ms for a spec). A pre-forked init, and a warm
// spare shim, call it while they wait, at idle time, so the config that
// comes later is coded at full speed.
func WarmJSON() {
	var m Msg
	fill(reflect.ValueOf(&m).Elem(), 0)
	b, err := json.Marshal(&m)
	if err != nil {
		return
	}
	var out Msg
	_ = json.Unmarshal(b, &out)
}

// fill gives v one element of every pointer, slice and map in it, down to
// a bounded depth (no spec type is recursive; the bound is a guard).
func fill(v reflect.Value, depth int) {
	if depth > 12 || !v.CanSet() {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		fill(e.Elem(), depth+1)
		v.Set(e)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // []byte: base64, no per-type work
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		k := reflect.New(v.Type().Key()).Elem()
		if k.Kind() == reflect.String {
			k.SetString("k")
		}
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, depth+1)
		m := reflect.MakeMapWithSize(v.Type(), 1)
		m.SetMapIndex(k, e)
		v.Set(m)
	}
}
