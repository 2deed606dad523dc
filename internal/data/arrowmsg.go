package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// checkedMessages reads the messages of an Arrow IPC stream as ipc.NewMessageReader does, but
// checks each message's metadata before the library sees it: arrow-go sizes slices by the
// vector lengths of the metadata (a schema's field count) unchecked, so a corrupt length
// would be an allocation no recover can catch. Body lengths are bounded by what the file
// still holds.
type checkedMessages struct {
	r        io.Reader
	left     int64 // bytes of the file not yet read
	msg      *ipc.Message
	refCount atomic.Int64
}

const maxArrowMetadata = 64 << 20

func newCheckedMessages(r io.Reader, size int64) *checkedMessages {
	m := &checkedMessages{r: r, left: size}
	m.refCount.Add(1)
	return m
}

func (m *checkedMessages) Retain() { m.refCount.Add(1) }

func (m *checkedMessages) Release() {
	if m.refCount.Add(-1) == 0 && m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
}

func (m *checkedMessages) read(buf []byte) error {
	if int64(len(buf)) > m.left {
		return io.ErrUnexpectedEOF
	}
	n, err := io.ReadFull(m.r, buf)
	m.left -= int64(n)
	return err
}

func (m *checkedMessages) Message() (*ipc.Message, error) {
	var word [4]byte
	if err := m.read(word[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF // a stream may end without its end marker
		}
		return nil, fmt.Errorf("message length: %w", err)
	}
	size := binary.LittleEndian.Uint32(word[:])
	if size == 0xFFFFFFFF { // the continuation marker, then the length
		if err := m.read(word[:]); err != nil {
			return nil, fmt.Errorf("message length: %w", err)
		}
		size = binary.LittleEndian.Uint32(word[:])
	}
	if size == 0 {
		return nil, io.EOF
	}
	if size < 4 || size > maxArrowMetadata || int64(size) > m.left {
		return nil, fmt.Errorf("a message of %d bytes of metadata, with %d bytes left in the file", size, m.left)
	}
	meta := make([]byte, size)
	if err := m.read(meta); err != nil {
		return nil, fmt.Errorf("message metadata: %w", err)
	}
	bodyLen, err := checkMessage(meta)
	if err != nil {
		return nil, fmt.Errorf("message metadata: %w", err)
	}
	if bodyLen < 0 || bodyLen > m.left {
		return nil, fmt.Errorf("a message body of %d bytes, with %d bytes left in the file", bodyLen, m.left)
	}
	body := make([]byte, bodyLen)
	if err := m.read(body); err != nil {
		return nil, fmt.Errorf("message body: %w", err)
	}
	if m.msg != nil {
		m.msg.Release()
	}
	metaBuf, bodyBuf := memory.NewBufferBytes(meta), memory.NewBufferBytes(body)
	m.msg = ipc.NewMessage(metaBuf, bodyBuf)
	metaBuf.Release()
	bodyBuf.Release()
	return m.msg, nil
}

// fb reads a flatbuffer with every offset and length checked against its size.
type fb struct {
	b     []byte
	nodes int // tables visited, bounding the walk
}

var errFlatbuffer = errors.New("corrupt flatbuffer")

func (f *fb) u32(at int) (uint32, error) {
	if at < 0 || at+4 > len(f.b) {
		return 0, errFlatbuffer
	}
	return binary.LittleEndian.Uint32(f.b[at:]), nil
}

// table is the position of the table that the offset at `at` points to.
func (f *fb) table(at int) (int, error) {
	off, err := f.u32(at)
	if err != nil || int(off) > len(f.b)-at {
		return 0, errFlatbuffer
	}
	if f.nodes++; f.nodes > len(f.b)/4+1 {
		return 0, errFlatbuffer
	}
	return at + int(off), nil
}

// field is the position of field slot of the table at pos, or 0 when absent.
func (f *fb) field(pos, slot int) (int, error) {
	so, err := f.u32(pos)
	if err != nil {
		return 0, err
	}
	vt := pos - int(int32(so))
	if vt < 0 || vt+4 > len(f.b) {
		return 0, errFlatbuffer
	}
	vtSize := int(binary.LittleEndian.Uint16(f.b[vt:]))
	if vt+vtSize > len(f.b) {
		return 0, errFlatbuffer
	}
	entry := 4 + 2*slot
	if entry+2 > vtSize {
		return 0, nil
	}
	off := int(binary.LittleEndian.Uint16(f.b[vt+entry:]))
	if off == 0 {
		return 0, nil
	}
	if pos+off >= len(f.b) {
		return 0, errFlatbuffer
	}
	return pos + off, nil
}

// vector is the start and length of the vector field slot of the table at pos (elements of
// size bytes each), checked to lie within the buffer.
func (f *fb) vector(pos, slot, size int) (start, n int, err error) {
	at, err := f.field(pos, slot)
	if err != nil || at == 0 {
		return 0, 0, err
	}
	vec, err := f.table(at)
	if err != nil {
		return 0, 0, err
	}
	l, err := f.u32(vec)
	if err != nil || int64(l)*int64(size) > int64(len(f.b)-vec-4) {
		return 0, 0, errFlatbuffer
	}
	return vec + 4, int(l), nil
}

// tables checks each table of the vector field slot of the table at pos with check.
func (f *fb) tables(pos, slot int, check func(int) error) error {
	start, n, err := f.vector(pos, slot, 4)
	if err != nil {
		return err
	}
	for i := range n {
		t, err := f.table(start + 4*i)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// Arrow's Message.fbs, as far as arrow-go sizes anything by it.
const (
	messageHeaderType, messageHeader, messageBodyLength, messageMetadata = 1, 2, 3, 4
	schemaFields, schemaMetadata, schemaFeatures                         = 1, 2, 3
	fieldChildren, fieldMetadata                                         = 5, 6
	batchNodes, batchBuffers, batchVariadic                              = 1, 2, 4
	dictionaryData                                                       = 1
	headerSchema, headerDictionary, headerRecordBatch                    = 1, 2, 3
)

// checkMessage checks the vectors of one IPC message's metadata and returns its body length.
func checkMessage(meta []byte) (int64, error) {
	f := &fb{b: meta}
	root, err := f.table(0)
	if err != nil {
		return 0, err
	}
	var bodyLen int64
	if at, err := f.field(root, messageBodyLength); err != nil {
		return 0, err
	} else if at != 0 {
		if at+8 > len(meta) {
			return 0, errFlatbuffer
		}
		bodyLen = int64(binary.LittleEndian.Uint64(meta[at:]))
	}
	if err := f.tables(root, messageMetadata, nil); err != nil {
		return 0, err
	}
	kind := 0
	if at, err := f.field(root, messageHeaderType); err != nil {
		return 0, err
	} else if at != 0 {
		kind = int(meta[at])
	}
	at, err := f.field(root, messageHeader)
	if err != nil || at == 0 {
		return bodyLen, err
	}
	header, err := f.table(at)
	if err != nil {
		return 0, err
	}
	switch kind {
	case headerSchema:
		err = checkSchema(f, header)
	case headerDictionary:
		if at, err = f.field(header, dictionaryData); err == nil && at != 0 {
			var batch int
			if batch, err = f.table(at); err == nil {
				err = checkBatch(f, batch)
			}
		}
	case headerRecordBatch:
		err = checkBatch(f, header)
	}
	return bodyLen, err
}

func checkSchema(f *fb, schema int) error {
	if err := f.tables(schema, schemaMetadata, nil); err != nil {
		return err
	}
	if _, _, err := f.vector(schema, schemaFeatures, 8); err != nil {
		return err
	}
	var field func(depth int) func(int) error
	field = func(depth int) func(int) error {
		return func(t int) error {
			if depth > maxTableNesting {
				return fmt.Errorf("fields nested more than %d deep", maxTableNesting)
			}
			if err := f.tables(t, fieldMetadata, nil); err != nil {
				return err
			}
			return f.tables(t, fieldChildren, field(depth+1))
		}
	}
	return f.tables(schema, schemaFields, field(0))
}

func checkBatch(f *fb, batch int) error {
	for _, v := range []struct{ slot, size int }{{batchNodes, 16}, {batchBuffers, 16}, {batchVariadic, 8}} {
		if _, _, err := f.vector(batch, v.slot, v.size); err != nil {
			return err
		}
	}
	return nil
}
