package mirror

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// EachParallel hands every item to one of n workers (at least one, at most
// one per item) until ctx ends, and waits for them. newWorker runs once in
// each worker's goroutine and returns what handles that worker's items, so
// a worker can keep buffers of its own. It returns ctx's error when ctx
// ended before every item was handed out.
func EachParallel[T any](ctx context.Context, items []T, n int, newWorker func() func(T)) error {
	jobs := make(chan T)
	var wg sync.WaitGroup
	for range max(1, min(n, len(items))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle := newWorker()
			for it := range jobs {
				handle(it)
			}
		}()
	}
feed:
	for _, it := range items {
		select {
		case jobs <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return ctx.Err()
}

// FirstN is s for an error message: the first n, then "and K more".
func FirstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
}
