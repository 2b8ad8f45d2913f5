package dashboard

import (
	"encoding/hex"
	"unicode"
	"unicode/utf8"
)

// bodyView is a job's body as a page shows it.
type bodyView struct {
	// Size is the body's full length in bytes; Shown how many of its
	// first bytes Content shows.
	Size, Shown int
	// Truncated tells that Shown < Size.
	Truncated bool
	// Text tells that Content is the body as text; otherwise it is a hex
	// dump of it.
	Text bool
	// Content is what to show. Templates escape it like any other string.
	Content string
}

// viewBody prepares the first limit bytes of body for a page: as text
// when they are valid UTF-8 without control characters (tabs and line
// breaks allowed) or characters that reorder text, and as a hex dump
// otherwise. A cut through a multi-byte character backs off to the
// character's start.
func viewBody(body []byte, limit int) bodyView {
	v := bodyView{Size: len(body), Text: true}
	shown := body
	if len(shown) > limit {
		shown = shown[:limit]
		v.Truncated = true
	}
	text := shown
	if v.Truncated {
		text = cutRune(text)
	}
	if isText(text) {
		v.Shown, v.Content = len(text), string(text)
		return v
	}
	v.Text = false
	v.Shown, v.Content = len(shown), hex.Dump(shown)
	return v
}

// cutRune drops an incomplete UTF-8 sequence from the end of b.
func cutRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// isText reports whether b reads safely as text.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
		case unicode.IsControl(r), bidiControl(r):
			return false
		}
	}
	return true
}

// bidiControl reports whether r is one of the characters that change the
// direction of the text around them, which can make text read as
// something it is not.
func bidiControl(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' ||
		('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069')
}
