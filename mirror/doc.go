// Package mirror is the content store every repository format shares.
package mirror
