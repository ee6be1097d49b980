package bundle

// Info is what `bundle inspect` shows.
type Info struct {
	ID       string    `json:"id"`
	Parts    []string  `json:"parts"`
	Manifest *Manifest `json:"manifest"`
	// Compressed: the parts hold the tar zstd-compressed.
	Compressed bool `json:"compressed"`
	// Bytes is what the bundle carries per kind (repos, files, images);
	// a blob shared by several kinds counts for the first.
	Bytes map[string]int64 `json:"bytes"`
}

// Inspect reads a bundle's manifest and checks its parts are there.
// It reads no blob (import verifies them).
func Inspect(path string) (Info, error) {
	bm, raw, parts, err := findBundle(path)
	if err != nil {
		return Info{}, err
	}
	info := Info{ID: bundleID(raw), Parts: parts.files, Manifest: bm, Compressed: parts.compressed, Bytes: map[string]int64{}}
	carried := map[string]int64{}
	for _, b := range bm.Blobs {
		carried[b.Digest] = b.Size
	}
	count := func(kind, d string) {
		if n, ok := carried[d]; ok {
			info.Bytes[kind] += n
			delete(carried, d)
		}
	}
	for _, r := range bm.Repos {
		for _, f := range r.Files {
			count("repos", f.Digest)
		}
	}
	for _, f := range bm.Files {
		count("files", f.Digest)
	}
	for _, im := range bm.Images {
		for _, b := range im.Blobs {
			count("images", b)
		}
	}
	return info, nil
}
