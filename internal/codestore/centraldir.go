package codestore

import "encoding/binary"

// Zip record signatures and fixed lengths (APPNOTE.TXT 4.3).
const (
	sigCentral     = 0x02014b50
	sigEnd         = 0x06054b50
	sigEnd64       = 0x06064b50
	sigEnd64Loc    = 0x07064b50
	lenCentral     = 46
	lenEnd         = 22
	lenEnd64       = 56
	lenEnd64Loc    = 20
	maxEndSearch   = 65 * 1024
	firstEndSearch = 1024
)

// centralRecords returns an upper bound on the number of central-directory
// records archive/zip's reader would parse from b, counting no further than
// limit+1. It runs before zip.NewReader because that reader materialises every
// record (about 250 bytes each) before anyone can look at the count, and a
// 50 MB zip can hold a million of them.
//
// archive/zip starts reading records at one of two offsets derived from the
// end-of-central-directory record (zip32 or zip64) and continues until a
// record fails to parse, whatever the declared count. So this walks the chain
// of well-formed record headers from every offset archive/zip could pick and
// returns the longest. Anything it cannot locate is left for zip.NewReader to
// reject.
func centralRecords(b []byte, limit int) int {
	end := findEnd(b)
	if end < 0 {
		return 0
	}
	size := uint64(binary.LittleEndian.Uint32(b[end+12:]))
	off := uint64(binary.LittleEndian.Uint32(b[end+16:]))
	n := max(walkCentral(b, off, limit), walkCentral(b, uint64(end)-size, limit))

	// zip64: the end record's fields are saturated and a locator precedes it.
	records := binary.LittleEndian.Uint16(b[end+10:])
	if records != 0xffff && size != 0xffff && size != 0xffffffff && off != 0xffffffff {
		return n
	}
	loc := end - lenEnd64Loc
	if loc < 0 || binary.LittleEndian.Uint32(b[loc:]) != sigEnd64Loc {
		return n
	}
	p := binary.LittleEndian.Uint64(b[loc+8:])
	if len(b) < lenEnd64 || p > uint64(len(b)-lenEnd64) || binary.LittleEndian.Uint32(b[p:]) != sigEnd64 {
		return n
	}
	size64 := binary.LittleEndian.Uint64(b[p+40:])
	off64 := binary.LittleEndian.Uint64(b[p+48:])
	n = max(n, walkCentral(b, off64, limit), walkCentral(b, p-size64, limit))
	return n
}

// findEnd returns the offset of the end-of-central-directory record, searching
// backwards from the end of b (first the last 1 KiB, then the last 65 KiB, the
// way archive/zip does), or -1.
func findEnd(b []byte) int {
	for _, window := range []int{firstEndSearch, maxEndSearch} {
		start := max(len(b)-window, 0)
		for i := len(b) - lenEnd; i >= start; i-- {
			if binary.LittleEndian.Uint32(b[i:]) != sigEnd {
				continue
			}
			// The comment must fit in the window; otherwise this is not the
			// record archive/zip would use, and neither is any earlier one.
			comment := int(binary.LittleEndian.Uint16(b[i+lenEnd-2:]))
			if i+lenEnd+comment > len(b) {
				return -1
			}
			return i
		}
		if start == 0 {
			break
		}
	}
	return -1
}

// walkCentral counts consecutive central-directory record headers starting at
// off, stopping after limit+1. An offset outside b (including one that
// wrapped around when computed) counts nothing.
func walkCentral(b []byte, off uint64, limit int) int {
	n := 0
	for n <= limit {
		if off > uint64(len(b)) || uint64(len(b))-off < lenCentral {
			break
		}
		h := b[off:]
		if binary.LittleEndian.Uint32(h) != sigCentral {
			break
		}
		vars := uint64(binary.LittleEndian.Uint16(h[28:])) +
			uint64(binary.LittleEndian.Uint16(h[30:])) +
			uint64(binary.LittleEndian.Uint16(h[32:]))
		n++
		off += lenCentral + vars
	}
	return n
}
