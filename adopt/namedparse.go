package adopt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// named.conf's grammar, as BIND's own parser (lib/isccfg) reads it:
// statements of words, optionally one block `{ statements }`, ended by
// `;`; strings in double quotes; comments as in C (`/* */`), C++ (`//`)
// and shell (`#`). No maintained Go parser for it exists on the module
// proxy this project can reach, so this small one is written and tested
// here (namedparse_test.go, fuzz seeds included).

// Stmt is one named.conf statement: `words { block } tail;`.
type Stmt struct {
	Pos      Pos
	Words    []string // e.g. zone, example.com, IN
	HasBlock bool
	Block    []*Stmt
	Tail     []string // words after the block, rare
}

// Keyword is the statement's first word, lowercased.
func (s *Stmt) Keyword() string {
	if len(s.Words) == 0 {
		return ""
	}
	return strings.ToLower(s.Words[0])
}

// Arg returns word i (0 is the keyword), or "".
func (s *Stmt) Arg(i int) string {
	if i < len(s.Words) {
		return s.Words[i]
	}
	return ""
}

// Text is the statement written on one line, its block abbreviated.
func (s *Stmt) Text() string {
	t := strings.Join(s.Words, " ")
	if s.HasBlock {
		var inner []string
		for _, b := range s.Block {
			inner = append(inner, b.Text())
		}
		t += " { " + strings.Join(inner, " ") + " }"
	}
	if len(s.Tail) > 0 {
		t += " " + strings.Join(s.Tail, " ")
	}
	return t + ";"
}

// Find returns the block's first statement with keyword kw, or nil.
func (s *Stmt) Find(kw string) *Stmt {
	for _, b := range s.Block {
		if b.Keyword() == kw {
			return b
		}
	}
	return nil
}

type tokenKind int

const (
	tokWord tokenKind = iota
	tokString
	tokOpen
	tokClose
	tokSemi
)

type token struct {
	kind tokenKind
	text string
	line int
}

// tokenize splits named.conf text into words, strings and punctuation,
// dropping the three kinds of comments.
func tokenize(file string, data []byte) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#' || (c == '/' && i+1 < len(data) && data[i+1] == '/'):
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(data) && data[i+1] == '*':
			start := line
			end := strings.Index(string(data[i+2:]), "*/")
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: comment not closed", file, start)
			}
			line += strings.Count(string(data[i:i+2+end]), "\n")
			i += end + 4
		case c == '{' || c == '}' || c == ';':
			kind := map[byte]tokenKind{'{': tokOpen, '}': tokClose, ';': tokSemi}[c]
			toks = append(toks, token{kind: kind, text: string(c), line: line})
			i++
		case c == '"':
			start := line
			var b strings.Builder
			i++
			for ; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' && i+1 < len(data) {
					i++
				}
				if data[i] == '\n' {
					line++
				}
				b.WriteByte(data[i])
			}
			if i >= len(data) {
				return nil, fmt.Errorf("%s:%d: string not closed", file, start)
			}
			i++
			toks = append(toks, token{kind: tokString, text: b.String(), line: start})
		default:
			j := i
			for j < len(data) && !strings.ContainsRune(" \t\r\n\f\v{};\"", rune(data[j])) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: string(data[i:j]), line: line})
			i = j
		}
	}
	return toks, nil
}

// parseNamed parses one file's text into statements; includes stay
// statements here (loadNamed follows them).
func parseNamed(file string, data []byte) ([]*Stmt, error) {
	toks, err := tokenize(file, data)
	if err != nil {
		return nil, err
	}
	p := &namedParser{file: file, toks: toks}
	stmts, err := p.statements(false)
	if err != nil {
		return nil, err
	}
	return stmts, nil
}

type namedParser struct {
	file string
	toks []token
	i    int
}

func (p *namedParser) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, line, fmt.Sprintf(format, args...))
}

// statements reads until the end of the input or, inside a block, its `}`.
func (p *namedParser) statements(inBlock bool) ([]*Stmt, error) {
	var out []*Stmt
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		switch t.kind {
		case tokClose:
			if !inBlock {
				return nil, p.errorf(t.line, "unexpected '}'")
			}
			return out, nil
		case tokSemi: // a stray ';' is harmless, as BIND treats it
			p.i++
			continue
		}
		s, err := p.statement()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if inBlock {
		return nil, fmt.Errorf("%s: unexpected end of file: missing '}'", p.file)
	}
	return out, nil
}

func (p *namedParser) statement() (*Stmt, error) {
	s := &Stmt{Pos: Pos{File: p.file, Line: p.toks[p.i].line}}
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		switch t.kind {
		case tokWord, tokString:
			if s.HasBlock {
				s.Tail = append(s.Tail, t.text)
			} else {
				s.Words = append(s.Words, t.text)
			}
			p.i++
		case tokOpen:
			if s.HasBlock {
				return nil, p.errorf(t.line, "a second block in one statement: missing ';'")
			}
			p.i++
			block, err := p.statements(true)
			if err != nil {
				return nil, err
			}
			p.i++ // the '}'
			s.HasBlock, s.Block = true, block
			if s.Block == nil {
				s.Block = []*Stmt{}
			}
		case tokSemi:
			p.i++
			return s, nil
		case tokClose:
			return nil, p.errorf(t.line, "missing ';' before '}'")
		}
	}
	return nil, p.errorf(s.Pos.Line, "statement not ended by ';'")
}

// maxIncludeDepth stops include loops.
const maxIncludeDepth = 16

// loadNamed reads a named.conf and every file it includes, in place of the
// include statement. A relative include is resolved against the including
// file's folder.
func loadNamed(path string) ([]*Stmt, error) {
	return loadNamedDepth(path, 0)
}

func loadNamedDepth(path string, depth int) ([]*Stmt, error) {
	if depth > maxIncludeDepth {
		return nil, fmt.Errorf("%s: includes nested deeper than %d: a loop?", path, maxIncludeDepth)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read named.conf: %w", err)
	}
	stmts, err := parseNamed(path, data)
	if err != nil {
		return nil, err
	}
	return expandIncludes(stmts, filepath.Dir(path), depth)
}

func expandIncludes(stmts []*Stmt, dir string, depth int) ([]*Stmt, error) {
	var out []*Stmt
	for _, s := range stmts {
		if s.Keyword() == "include" && !s.HasBlock {
			if len(s.Words) != 2 {
				return nil, fmt.Errorf("%s: include takes one file name", s.Pos)
			}
			inc := s.Words[1]
			if !filepath.IsAbs(inc) {
				inc = filepath.Join(dir, inc)
			}
			sub, err := loadNamedDepth(inc, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: include: %w", s.Pos, err)
			}
			out = append(out, sub...)
			continue
		}
		if s.HasBlock {
			block, err := expandIncludes(s.Block, dir, depth)
			if err != nil {
				return nil, err
			}
			s.Block = block
		}
		out = append(out, s)
	}
	return out, nil
}
