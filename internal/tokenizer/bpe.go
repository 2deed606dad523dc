package tokenizer

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is the BPE model: a vocabulary, ranked merges and the unknown-token policy.
type bpe struct {
	vocab        map[string]int32 // token bytes → id (raw bytes for byte-level models)
	merges       map[uint64]merge // (left id, right id) → rank and merged id
	unk          int32            // -1 when the model has no unknown token
	byteFallback bool
	fuseUnk      bool
	ignoreMerges bool
	byteLevel    bool       // words are raw bytes, each byte a starting symbol
	byteTokens   [256]int32 // <0xXX> ids for byte fallback, -1 when missing

	cacheMu sync.RWMutex
	cache   map[string][]int32
}

type merge struct {
	rank   int32
	merged int32
}

func pairKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// The cache keeps the ids of frequent words; like HF it stops growing at a fixed size.
const (
	cacheCapacity  = 1 << 16
	cacheMaxLength = 256
)

type bpeJSON struct {
	Type                    string            `json:"type"`
	Dropout                 *float64          `json:"dropout"`
	UnkToken                *string           `json:"unk_token"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
	FuseUnk                 bool              `json:"fuse_unk"`
	ByteFallback            bool              `json:"byte_fallback"`
	IgnoreMerges            bool              `json:"ignore_merges"`
	Vocab                   map[string]int32  `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
}

func (f *jsonFile) parseModel(raw json.RawMessage, path string, byteLevel bool) (*bpe, []string, error) {
	if isNull(raw) {
		return nil, nil, f.errorf(path, "missing model")
	}
	kind, err := f.componentType(raw, path)
	if err != nil {
		return nil, nil, err
	}
	if kind != "BPE" {
		return nil, nil, f.errorf(path+".type", "unsupported model type %q (only BPE)", kind)
	}
	var m bpeJSON
	if err := f.decode(raw, path, &m); err != nil {
		return nil, nil, err
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return nil, nil, f.errorf(path+".continuing_subword_prefix", "not supported")
	}
	if m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, nil, f.errorf(path+".end_of_word_suffix", "not supported")
	}
	model := &bpe{
		vocab:        make(map[string]int32, len(m.Vocab)),
		merges:       make(map[uint64]merge, len(m.Merges)),
		unk:          -1,
		byteFallback: m.ByteFallback,
		fuseUnk:      m.FuseUnk,
		ignoreMerges: m.IgnoreMerges,
		byteLevel:    byteLevel,
		cache:        make(map[string][]int32),
	}
	// tokens keeps each id's token as written in the file; Decode works on those.
	size := 0
	for _, id := range m.Vocab {
		if id < 0 {
			return nil, nil, f.errorf(path+".vocab", "negative id %d", id)
		}
		size = max(size, int(id)+1)
	}
	tokens := make([]string, size)
	for token, id := range m.Vocab {
		tokens[id] = token
		model.vocab[model.modelBytes(token)] = id
	}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return nil, nil, f.errorf(path+".unk_token", "unknown token %q is not in the vocabulary", *m.UnkToken)
		}
		model.unk = id
	}
	for b := range model.byteTokens {
		model.byteTokens[b] = -1
		if id, ok := m.Vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			model.byteTokens[b] = id
		}
	}
	for rank, item := range m.Merges {
		itemPath := fmt.Sprintf("%s.merges[%d]", path, rank)
		left, right, err := f.mergePair(item, itemPath)
		if err != nil {
			return nil, nil, err
		}
		leftID, okL := m.Vocab[left]
		rightID, okR := m.Vocab[right]
		mergedID, okM := m.Vocab[left+right]
		if !okL || !okR || !okM {
			return nil, nil, f.errorf(itemPath, "merge %q %q uses a token missing from the vocabulary", left, right)
		}
		// A repeated merge keeps its last rank, as in HF.
		model.merges[pairKey(leftID, rightID)] = merge{rank: int32(rank), merged: mergedID}
	}
	return model, tokens, nil
}

// mergePair reads a merge written either as "a b" or as ["a", "b"].
func (f *jsonFile) mergePair(raw json.RawMessage, path string) (string, string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		left, right, ok := strings.Cut(s, " ")
		if !ok {
			return "", "", f.errorf(path, "merge %q is not two tokens separated by a space", s)
		}
		return left, right, nil
	}
	var pair []string
	if err := f.decode(raw, path, &pair); err != nil {
		return "", "", err
	}
	if len(pair) != 2 {
		return "", "", f.errorf(path, "merge has %d tokens, want 2", len(pair))
	}
	return pair[0], pair[1], nil
}

// modelBytes converts a vocabulary entry to the form words take: raw bytes for byte-level models.
func (m *bpe) modelBytes(token string) string {
	if !m.byteLevel {
		return token
	}
	if raw, ok := byteLevelDecode(token); ok {
		return string(raw)
	}
	return token
}

// encodeWord appends the ids of one pre-tokenized word.
func (m *bpe) encodeWord(dst []int32, word string) []int32 {
	if word == "" {
		return dst
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(dst, id)
		}
	}
	cacheable := len(word) <= cacheMaxLength
	if cacheable {
		m.cacheMu.RLock()
		ids, ok := m.cache[word]
		m.cacheMu.RUnlock()
		if ok {
			return append(dst, ids...)
		}
	}
	ids := m.mergeWord(word)
	if cacheable {
		m.cacheMu.Lock()
		if len(m.cache) < cacheCapacity {
			m.cache[word] = ids
		}
		m.cacheMu.Unlock()
	}
	return append(dst, ids...)
}

// symbol is one node of the doubly linked list BPE merges over.
type symbol struct {
	id         int32
	prev, next int32
	size       int32 // bytes covered; 0 once merged into its left neighbour
}

// candidate is a possible merge of the symbol at pos with its right neighbour.
type candidate struct {
	rank, pos, merged int32
}

// candidates orders merges by rank, then leftmost first, as HF's BinaryHeap does.
type candidates []candidate

func (c candidates) Len() int { return len(c) }
func (c candidates) Less(i, j int) bool {
	if c[i].rank != c[j].rank {
		return c[i].rank < c[j].rank
	}
	return c[i].pos < c[j].pos
}
func (c candidates) Swap(i, j int) { c[i], c[j] = c[j], c[i] }
func (c *candidates) Push(x any)   { *c = append(*c, x.(candidate)) }
func (c *candidates) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

// initialSymbols splits a word into the starting symbols: bytes for byte-level models, chars
// otherwise, with byte fallback and (fused) unknown tokens as HF's BPE does.
func (m *bpe) initialSymbols(word string) []symbol {
	symbols := make([]symbol, 0, len(word))
	add := func(id int32, size int) {
		symbols = append(symbols, symbol{id: id, size: int32(size)})
	}
	pendingUnk, pendingSize := false, 0
	flushUnk := func() {
		if pendingUnk {
			add(m.unk, pendingSize)
			pendingUnk, pendingSize = false, 0
		}
	}
	for i := 0; i < len(word); {
		width := 1
		if !m.byteLevel {
			_, width = utf8.DecodeRuneInString(word[i:])
		}
		unit := word[i : i+width]
		i += width
		if id, ok := m.vocab[unit]; ok {
			flushUnk()
			add(id, width)
			continue
		}
		if m.byteFallback && m.allBytesKnown(unit) {
			for k := 0; k < len(unit); k++ {
				add(m.byteTokens[unit[k]], 1)
			}
			continue
		}
		if m.unk < 0 {
			continue // no unknown token: HF drops the char
		}
		if pendingUnk && !m.fuseUnk {
			flushUnk()
		}
		pendingUnk = true
		pendingSize += width
	}
	flushUnk()
	for i := range symbols {
		symbols[i].prev = int32(i) - 1
		symbols[i].next = int32(i) + 1
	}
	if n := len(symbols); n > 0 {
		symbols[n-1].next = -1
	}
	return symbols
}

func (m *bpe) allBytesKnown(unit string) bool {
	for k := 0; k < len(unit); k++ {
		if m.byteTokens[unit[k]] < 0 {
			return false
		}
	}
	return true
}

func (m *bpe) mergeWord(word string) []int32 {
	symbols := m.initialSymbols(word)
	queue := make(candidates, 0, len(symbols))
	for i := 0; i+1 < len(symbols); i++ {
		if mg, ok := m.merges[pairKey(symbols[i].id, symbols[i+1].id)]; ok {
			queue = append(queue, candidate{rank: mg.rank, pos: int32(i), merged: mg.merged})
		}
	}
	heap.Init(&queue)
	for queue.Len() > 0 {
		top := heap.Pop(&queue).(candidate)
		left := &symbols[top.pos]
		if left.size == 0 || left.next < 0 {
			continue
		}
		rightPos := left.next
		right := &symbols[rightPos]
		// Skip entries made stale by earlier merges.
		if mg, ok := m.merges[pairKey(left.id, right.id)]; !ok || mg.merged != top.merged {
			continue
		}
		left.id = top.merged
		left.size += right.size
		left.next = right.next
		right.size = 0
		if left.next >= 0 {
			symbols[left.next].prev = top.pos
		}
		if left.prev >= 0 {
			prev := symbols[left.prev]
			if mg, ok := m.merges[pairKey(prev.id, left.id)]; ok {
				heap.Push(&queue, candidate{rank: mg.rank, pos: left.prev, merged: mg.merged})
			}
		}
		if left.next >= 0 {
			if mg, ok := m.merges[pairKey(left.id, symbols[left.next].id)]; ok {
				heap.Push(&queue, candidate{rank: mg.rank, pos: top.pos, merged: mg.merged})
			}
		}
	}
	ids := make([]int32, 0, len(symbols))
	for i := range symbols {
		if symbols[i].size > 0 {
			ids = append(ids, symbols[i].id)
		}
	}
	return ids
}
