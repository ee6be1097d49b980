package pypi

import "testing"

func TestSelector(t *testing.T) {
	cfg := Config{Platforms: []string{"manylinux_2_28_x86_64"}, PythonVersions: []string{"3.11"}}
	sdists := cfg
	sdists.SDists = true
	for _, tc := range []struct {
		cfg  Config
		file string
		want bool
	}{
		{cfg, "alpha-1.0-py3-none-any.whl", true},
		{cfg, "alpha-1.0-py2.py3-none-any.whl", true},
		{cfg, "alpha-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", true},
		{cfg, "alpha-1.0-cp311-cp311-manylinux2014_x86_64.whl", true},
		{cfg, "alpha-1.0-cp311-cp311-manylinux_2_34_x86_64.whl", false},
		{cfg, "alpha-1.0-cp311-cp311-manylinux_2_17_aarch64.whl", false},
		{cfg, "alpha-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", false},
		{cfg, "alpha-1.0-cp38-abi3-manylinux_2_17_x86_64.whl", true},
		{cfg, "alpha-1.0-cp38-cp38-manylinux_2_17_x86_64.whl", false},
		{cfg, "alpha-1.0-cp311-cp311-win_amd64.whl", false},
		{cfg, "alpha-1.0-1build-py3-none-any.whl", true},
		{cfg, "alpha-1.0.tar.gz", false},
		{sdists, "alpha-1.0.tar.gz", true},
		{sdists, "alpha-1.0.zip", true},
		{Config{}, "alpha-1.0-cp27-cp27mu-linux_i686.whl", true},
	} {
		d, ok := parseFilename("alpha", tc.file)
		if !ok {
			t.Fatalf("%s: not read", tc.file)
		}
		if d.version != "1.0" {
			t.Errorf("%s: version %q", tc.file, d.version)
		}
		if got := newSelector(tc.cfg).wants(d); got != tc.want {
			t.Errorf("%s with %v/%v/%v: got %v, want %v", tc.file, tc.cfg.Platforms, tc.cfg.PythonVersions, tc.cfg.SDists, got, tc.want)
		}
	}
	for _, name := range []string{"beta-1.0-py3-none-any.whl", "alpha-1.0.egg", "alpha.tar.gz"} {
		if _, ok := parseFilename("alpha", name); ok {
			t.Errorf("%s read as a file of alpha", name)
		}
	}
	if d, ok := parseFilename("zope-interface", "zope.interface-6.1.tar.gz"); !ok || d.version != "6.1" {
		t.Errorf("zope.interface sdist: %v %v", d, ok)
	}
}
