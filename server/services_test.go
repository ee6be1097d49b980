package server

import (
	"reflect"
	"strings"
	"testing"
)

// TestServiceTable: the table and Config agree. Every service's key is a
// section of Config whose type its defaults fill, a service that listens
// has a `listen:` key, and every section of Config is in the table.
func TestServiceTable(t *testing.T) {
	seen := map[string]bool{}
	for _, sv := range services() {
		t.Run(sv.key, func(t *testing.T) {
			if seen[sv.key] {
				t.Fatalf("%s is in the table twice", sv.key)
			}
			seen[sv.key] = true
			i := sectionIndex(sv.key)
			if i < 0 {
				t.Fatalf("Config has no field with yaml key %q", sv.key)
			}
			ft := reflect.TypeOf(Config{}).Field(i).Type
			if ft.Kind() != reflect.Pointer {
				t.Fatalf("Config's %s field is a %s, want a pointer (nil = absent)", sv.key, ft)
			}
			if got := reflect.TypeOf(sv.defaults()); got != ft.Elem() {
				t.Errorf("defaults are a %s, the section a %s", got, ft.Elem())
			}
			if _, ok := ft.Elem().FieldByName("Enabled"); !ok {
				t.Errorf("%s has no Enabled field", ft.Elem())
			}
			if len(sv.listen) > 0 {
				if _, ok := ft.Elem().FieldByName("Listen"); !ok {
					t.Errorf("%s listens but %s has no Listen field", sv.key, ft.Elem())
				}
			}
		})
	}
	ct := reflect.TypeOf(Config{})
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		if f.Type.Kind() != reflect.Pointer {
			continue
		}
		if _, ok := f.Type.MethodByName("Validate"); !ok { // a service section
			continue
		}
		if key := yamlKey(f); !seen[key] {
			t.Errorf("Config's section %q is not in the service table", key)
		}
	}
}

func yamlKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return key
}
