package cloudtrail

import (
	"errors"
	"fmt"
	"io"
)

// source wraps the caller's reader and keeps its first error, so that a failure to read is told
// apart from bad content however deeply gzip and base64 readers wrap it.
type source struct {
	r   io.Reader
	err error
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// inputError is bad content below the JSON layer (bad gzip, bad base64, too much data): the rest of
// that input is lost and one rejection with Index -1 reports it.
type inputError struct {
	reason Reason
	err    error
}

func (e *inputError) Error() string { return fmt.Sprintf("%s: %v", e.reason, e.err) }
func (e *inputError) Unwrap() error { return e.err }

// outerError is an error of the enclosing stream met while a nested input (the base64 text of a
// CloudWatch Logs payload) was read from it. It is handed back to the enclosing stream unreported.
type outerError struct{ err error }

func (e *outerError) Error() string { return e.err.Error() }
func (e *outerError) Unwrap() error { return e.err }

// tagReader marks the errors of r, other than io.EOF and errors already marked, with a reason.
type tagReader struct {
	r      io.Reader
	reason Reason
}

func (t tagReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	return n, tag(err, t.reason)
}

// tag marks err with reason unless it is io.EOF or already marked.
func tag(err error, reason Reason) error {
	var ie *inputError
	var oe *outerError
	if err == nil || err == io.EOF || errors.As(err, &ie) || errors.As(err, &oe) {
		return err
	}
	return &inputError{reason, err}
}

// limitReader fails with ReasonTooLarge once r gives more than limit bytes.
type limitReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n + int(l.left), &inputError{ReasonTooLarge, fmt.Errorf("input over %d bytes", l.limit)}
	}
	return n, err
}

// stringReader reads the content of the JSON string whose opening quote the scanner has just read,
// up to and including the closing quote. It knows only the escapes that base64 text may carry.
// Its errors other than io.EOF are outerErrors.
type stringReader struct {
	s   *scanner
	err error
}

func (r *stringReader) Read(p []byte) (int, error) {
	for r.err == nil {
		n, i, b := 0, 0, r.s.avail()
		for i < len(b) && n < len(p) {
			c := b[i]
			if c == '\\' {
				if i+1 == len(b) {
					break // the escaped byte is not buffered yet
				}
				switch b[i+1] {
				case '/', '"', '\\':
					c = b[i+1]
				case 'n':
					c = '\n'
				case 'r':
					c = '\r'
				default:
					r.err = &outerError{errSyntax}
				}
				i++
			} else if c == '"' {
				r.err = io.EOF
			} else if c < 0x20 {
				r.err = &outerError{errSyntax}
			}
			if r.err != nil {
				break
			}
			p[n] = c
			n++
			i++
		}
		if r.err == io.EOF {
			i++ // the closing quote
		}
		r.s.pos += int64(i)
		if n > 0 {
			return n, nil
		}
		if r.err != nil {
			break
		}
		if !r.s.more() {
			r.err = &outerError{eof(r.s.err)}
		}
	}
	return 0, r.err
}

// rawReader reads the rest of the stream, without spaces and tabs (base64 text). Its errors other
// than io.EOF are outerErrors.
type rawReader struct{ s *scanner }

func (r rawReader) Read(p []byte) (int, error) {
	for {
		n, i, b := 0, 0, r.s.avail()
		for ; i < len(b) && n < len(p); i++ {
			if c := b[i]; c != ' ' && c != '\t' {
				p[n] = c
				n++
			}
		}
		r.s.pos += int64(i)
		if n > 0 {
			return n, nil
		}
		if !r.s.more() {
			if r.s.err == io.EOF {
				return 0, io.EOF
			}
			return 0, &outerError{r.s.err}
		}
	}
}
