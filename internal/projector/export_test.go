package projector

// CheckMemo makes p read back every explode row it takes from its memo
// and fail the batch when the two differ.
func CheckMemo(p *Projector) { p.checkMemo = true }

// MemoKeys is how many (table, PC, job) row sets p keeps from its last
// committed batch.
func MemoKeys(p *Projector) int {
	if p.memo == nil {
		return 0
	}
	n := 0
	for _, mt := range p.memo.tables {
		n += len(mt.keys)
	}
	return n
}

// NoCarry makes p plan each batch's history on its own, never against
// the batch before it (the reference the carried plans are tested
// against).
func NoCarry(p *Projector) { p.noCarry = true }
