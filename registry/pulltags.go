package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
)

// tagListLimit bounds an upstream's tag list answer.
const tagListLimit = 8 << 20

// pullTags answers GET /v2/NAME/tags/list for a mirrored repository with
// the upstream's tags and the store's own (pulled, pushed or imported),
// in lexical order, paged by n and last as the spec says. Without the
// upstream's, a tag the store has not pulled yet would be missing from the
// list while a pull of it succeeds. It reports false, leaving the answer
// to distribution (the store's tags alone), when the upstream is down or
// does not know the repository.
func (r *Registry) pullTags(w http.ResponseWriter, req *http.Request, rt route, u *upstream, upRepo string) bool {
	if !u.available() {
		return false
	}
	ctx, cancel := context.WithTimeout(withLogrus(req.Context(), r.log), 10*time.Second)
	defer cancel()
	upstreamTags, err := upstreamTagList(ctx, u, upRepo)
	if err != nil {
		r.log.Debug("upstream tag list", "repo", rt.repo, "err", err)
		return false
	}
	tags := upstreamTags
	if named, err := reference.WithName(rt.repo); err == nil {
		if repo, err := r.ns.Repository(ctx, named); err == nil {
			local, err := repo.Tags(ctx).All(ctx)
			var unknown distribution.ErrRepositoryUnknown
			if err != nil && !errors.As(err, &unknown) {
				return false
			}
			tags = append(tags, local...)
		}
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	q := req.URL.Query()
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(tags, last)
		for i < len(tags) && tags[i] <= last {
			i++
		}
		tags = tags[i:]
	}
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n >= 0 && n < len(tags) {
		tags = tags[:n]
		if n > 0 {
			next := url.Values{"n": {strconv.Itoa(n)}, "last": {tags[n-1]}}
			w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, next.Encode()))
		}
	}
	body, err := json.Marshal(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.repo, append([]string{}, tags...)})
	if err != nil {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		w.Write(body)
	}
	return true
}

// upstreamTagList is the upstream's first page of tags for repo.
func upstreamTagList(ctx context.Context, u *upstream, repo string) ([]string, error) {
	resp, err := u.do(ctx, http.MethodGet, repo, "/tags/list", nil)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("tags of %s: %s", repo, resp.Status)
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, tagListLimit)).Decode(&list); err != nil {
		return nil, fmt.Errorf("tags of %s: %w", repo, err)
	}
	return list.Tags, nil
}
