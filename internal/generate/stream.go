package generate

import (
	"strings"

	"github.com/yai-dev/yai/internal/tokenizer"
)

// TextStream turns tokens into text as they come. A token may end inside a multi-byte
// character, so text ending in U+FFFD waits for the next token; after a newline the
// segment restarts, keeping each decode short.
type TextStream struct {
	tok     *tokenizer.Tokenizer
	segment []int32
	printed int // bytes of the segment's text already returned
}

func NewTextStream(tok *tokenizer.Tokenizer) *TextStream { return &TextStream{tok: tok} }

// Add takes the next token and returns the text that became final.
func (s *TextStream) Add(id int32) string {
	s.segment = append(s.segment, id)
	text := s.tok.Decode(s.segment, true)
	if strings.HasSuffix(text, "\uFFFD") || len(text) < s.printed {
		return ""
	}
	out := text[s.printed:]
	s.printed = len(text)
	if strings.HasSuffix(text, "\n") {
		s.segment, s.printed = s.segment[:0], 0
	}
	return out
}

// Flush returns whatever text is still held back.
func (s *TextStream) Flush() string {
	text := s.tok.Decode(s.segment, true)
	out := ""
	if len(text) > s.printed {
		out = text[s.printed:]
	}
	s.segment, s.printed = s.segment[:0], 0
	return out
}
