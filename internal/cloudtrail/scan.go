package cloudtrail

import (
	"errors"
	"io"
)

// Errors of the scanner. Both mean the JSON outline is lost at this point of the stream.
var (
	errSyntax    = errors.New("invalid JSON syntax")
	errTruncated = errors.New("unexpected end of JSON input")
	errTooLarge  = errors.New("value over the size limit")
)

const readChunk = 16 << 10

// scanner splits a JSON byte stream into values without decoding them; json.Unmarshal decodes each
// value later. It owns its buffer so that a value is returned in place, its size is bounded while
// it is still being read (a huge value is skipped, never held), and it can step back to the next
// line after a syntax error. Offsets are positions in the whole stream.
type scanner struct {
	r    io.Reader
	buf  []byte
	base int64 // offset of buf[0]
	pos  int64 // offset of the next unread byte
	mark int64 // offset of the first byte to keep, -1 for none
	max  int64 // most bytes a mark may hold; past it the mark is dropped (see checkMark)
	err  error // first read error; io.EOF at the end of the stream
	// lenient lets raw control characters in strings through (json.Unmarshal rejects them later):
	// set inside arrays, where the outline is still found after them, unlike in NDJSON.
	lenient bool
}

func newScanner(r io.Reader, max int) *scanner {
	return &scanner{r: r, buf: make([]byte, 0, readChunk), mark: -1, max: int64(max)}
}

// more reads more bytes into buf, dropping those before pos (or before mark when set). It reports
// false when nothing more can be read; s.err says why.
func (s *scanner) more() bool {
	keep := s.pos
	if s.mark >= 0 && s.mark < keep {
		keep = s.mark
	}
	if drop := int(keep - s.base); drop > 0 {
		n := copy(s.buf, s.buf[drop:])
		s.buf = s.buf[:n]
		s.base = keep
	}
	if len(s.buf) == cap(s.buf) {
		grown := make([]byte, len(s.buf), 2*cap(s.buf)+readChunk)
		copy(grown, s.buf)
		s.buf = grown
	}
	for tries := 0; s.err == nil; tries++ {
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err != nil {
			s.err = err
		} else if n == 0 && tries > 100 {
			s.err = io.ErrNoProgress
		}
		if n > 0 {
			return true
		}
	}
	return false
}

// avail returns the buffered bytes not read yet.
func (s *scanner) avail() []byte { return s.buf[s.pos-s.base:] }

// checkMark drops the mark once it holds more than max bytes.
func (s *scanner) checkMark() {
	if s.mark >= 0 && s.pos-s.mark > s.max {
		s.mark = -1
	}
}

// eof turns io.EOF met inside a value into errTruncated.
func eof(err error) error {
	if err == io.EOF {
		return errTruncated
	}
	return err
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func isDelim(c byte) bool {
	switch c {
	case ' ', '\n', '\r', '\t', ',', ':', '[', ']', '{', '}', '"':
		return true
	}
	return false
}

// peek skips white space and returns the next byte without reading it. err is io.EOF at a clean
// end of the stream.
func (s *scanner) peek() (byte, error) {
	for {
		b := s.avail()
		for i, c := range b {
			if !isSpace(c) {
				s.pos += int64(i)
				return c, nil
			}
		}
		s.pos += int64(len(b))
		if !s.more() {
			return 0, s.err
		}
	}
}

// want is peek inside a value, where the end of the stream means the value was cut short.
func (s *scanner) want() (byte, error) {
	c, err := s.peek()
	return c, eof(err)
}

// hasPrefix reports whether the unread bytes start with p.
func (s *scanner) hasPrefix(p string) bool {
	for len(s.avail()) < len(p) && s.more() {
	}
	b := s.avail()
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// skipBOM skips a UTF-8 byte order mark at the start of the stream.
func (s *scanner) skipBOM() {
	if s.hasPrefix("\xef\xbb\xbf") {
		s.pos += 3
	}
}

// skipValue moves past the JSON value at the next non-space byte. It follows only the outline of
// the value (brackets and strings); json.Unmarshal checks the rest. Unless lenient, a raw control
// character inside a string is a syntax error, so that an NDJSON line cut short does not swallow
// the lines after it.
func (s *scanner) skipValue() error {
	c, err := s.want()
	if err != nil {
		return err
	}
	switch c {
	case '}', ']', ',', ':':
		s.pos++
		return errSyntax
	}
	var (
		depth  int
		inStr  = c == '"'
		esc    bool
		scalar = c != '{' && c != '[' && c != '"'
		i      = int(s.pos - s.base)
	)
	if inStr {
		i++
	}
	for {
		b := s.buf
		for ; i < len(b); i++ {
			c := b[i]
			if inStr {
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
					if depth == 0 {
						return s.end(i + 1)
					}
				case c < 0x20 && !s.lenient:
					s.pos = s.base + int64(i)
					return errSyntax
				}
				continue
			}
			if scalar {
				if isDelim(c) {
					return s.end(i)
				}
				continue
			}
			switch c {
			case '"':
				inStr = true
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return s.end(i + 1)
				}
			}
		}
		s.pos = s.base + int64(i)
		s.checkMark()
		if !s.more() {
			if scalar && s.err == io.EOF {
				return s.end(len(s.buf))
			}
			return eof(s.err)
		}
		i = int(s.pos - s.base)
	}
}

func (s *scanner) end(i int) error {
	s.pos = s.base + int64(i)
	s.checkMark()
	return nil
}

// readValue returns the next JSON value in place (valid until the scanner is used again), or
// errTooLarge, having skipped it, if it is over max bytes.
func (s *scanner) readValue() ([]byte, error) {
	if _, err := s.want(); err != nil {
		return nil, err
	}
	start, outer := s.pos, s.mark
	if outer < 0 {
		s.mark = start
	}
	err := s.skipValue()
	kept := s.mark >= 0
	if outer < 0 {
		s.mark = -1
	}
	switch {
	case err != nil:
		return nil, err
	case !kept || s.pos-start > s.max:
		return nil, errTooLarge
	}
	return s.buf[start-s.base : s.pos-s.base], nil
}

// objectKeys are the keys that object handles itself.
var objectKeys = [...]string{"Records", "logEvents", "messageType", "awslogs", "data"}

const maxKey = 64

// key reads an object key and the colon after it. It returns the key when it is one of objectKeys
// and "" for any other key.
func (s *scanner) key() (string, error) {
	c, err := s.want()
	if err != nil {
		return "", err
	}
	if c != '"' {
		return "", errSyntax
	}
	known := ""
	for {
		b := s.avail()
		i := 1
		for i < len(b) && i <= maxKey && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i < len(b) && i <= maxKey && b[i] == '"' {
			for _, k := range objectKeys {
				if string(b[1:i]) == k {
					known = k
				}
			}
			s.pos += int64(i + 1)
			s.checkMark()
			break
		}
		if i < len(b) { // a long key or one with escapes: not one of ours
			if err := s.skipValue(); err != nil {
				return "", err
			}
			break
		}
		if !s.more() {
			return "", eof(s.err)
		}
	}
	c, err = s.want()
	if err != nil {
		return "", err
	}
	if c != ':' {
		return "", errSyntax
	}
	s.pos++
	return known, nil
}

// skipToLine moves to the next line that starts with '{' or '[' (the next record of NDJSON or of
// concatenated JSON documents), or to the end of the stream.
func (s *scanner) skipToLine() error {
	s.mark = -1
	for {
		b := s.avail()
		for i := 0; i+1 < len(b); i++ {
			if b[i] == '\n' && (b[i+1] == '{' || b[i+1] == '[') {
				s.pos += int64(i + 1)
				return nil
			}
		}
		if len(b) > 1 {
			s.pos += int64(len(b) - 1) // keep the last byte: it may be the '\n'
		}
		if !s.more() {
			s.pos = s.base + int64(len(s.buf))
			if s.err == io.EOF {
				return nil
			}
			return s.err
		}
	}
}
