// Package mirror is the content store every repository format of airgapd
// shares (RPM today in mirror/rpm; APT, PyPI, Go modules and Helm charts
// next), and the pieces a format needs to fill it and serve it:
//
//   - Store: one repo's folder under data_dir/mirror/repos/NAME — a
//     content-addressed pool, snapshots of hard links into it, publish by
//     renaming one symlink (current), a per-repo flock (dropped by the
//     kernel when its holder dies, kill -9 included), Clean for what a
//     killed run left, and state.json (State, embedded by each format's own
//     record).
//   - Fetcher: verified downloads into the pool — size and checksum checked
//     before a file gets its name, resumed with Range from the partial file
//     a killed run left, retried with backoff, and FetchAny for fail-over
//     across a list of mirrors.
//   - PublishTree: a tree of files known by their sha256 published from the
//     pool, whatever fills the pool: a bundle's verified blobs, or (for HA
//     replication of a repo of any format, one code path) FetchPlace from a
//     peer's own published tree.
//   - Tracker, Progress, ImportProgress: a job's progress, live in the
//     status and throttled to the caller's stream.
//   - ServeTree: a published tree or a folder over HTTP, with Range, ETag,
//     If-Modified-Since, listings, and nothing outside its root.
//
// The store knows no format: which files a tree holds, what its metadata
// says and how it is verified beyond checksums belong to the format's
// package, which uses only this package's exported API.
package mirror
