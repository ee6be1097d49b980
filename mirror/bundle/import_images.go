package bundle

import (
	"context"
	"fmt"
)

// ImageBlobChecker is an ImageStore that can tell which blobs it lacks.
// With one, an incremental bundle's image need not carry the blobs the
// registry holds already (the layers it shares with the base's images);
// without one, every blob of an image must be in the bundle.
type ImageBlobChecker interface {
	MissingBlobs(ctx context.Context, digests []string) ([]string, error)
}

// missingImageBlobs names, for the images an import stores, each blob the
// bundle does not carry and the store does not hold.
func missingImageBlobs(ctx context.Context, store ImageStore, images []Image, carried map[string]bool) ([]string, error) {
	var ask []string
	asked := map[string]bool{}
	for _, im := range images {
		for _, b := range im.Blobs {
			if !carried[b] && !asked[b] {
				asked[b] = true
				ask = append(ask, b)
			}
		}
	}
	if len(ask) == 0 {
		return nil, nil
	}
	absent := ask
	if bc, ok := store.(ImageBlobChecker); ok {
		var err error
		if absent, err = bc.MissingBlobs(ctx, ask); err != nil {
			return nil, fmt.Errorf("ask the registry which blobs it holds: %w", err)
		}
	}
	isAbsent := map[string]bool{}
	for _, b := range absent {
		isAbsent[b] = true
	}
	var missing []string
	for _, im := range images {
		for _, b := range im.Blobs {
			if !carried[b] && isAbsent[b] {
				missing = append(missing, "image "+im.Name+": blob "+b)
			}
		}
	}
	return missing, nil
}
