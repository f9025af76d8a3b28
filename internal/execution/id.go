package execution

import "math/rand/v2"

// IDGenerator produces execution ids: random UUID v4 strings in lower-case canonical form
// (spec-core §6.1). Uniqueness matters, unpredictability does not, so a fast non-crypto
// source is used.
type IDGenerator struct {
	src func() uint64
}

// NewIDGenerator returns a generator drawing from src, which must be safe for concurrent use.
// A nil src uses math/rand/v2's runtime-backed generator: per-thread state, so concurrent
// callers never contend on a lock.
func NewIDGenerator(src func() uint64) *IDGenerator {
	if src == nil {
		src = rand.Uint64
	}
	return &IDGenerator{src: src}
}

const hexDigits = "0123456789abcdef"

// NewID returns a fresh id such as "1b4e28ba-2fa1-4d2e-883f-0016d3cca427". It allocates only
// the returned string.
func (g *IDGenerator) NewID() string {
	hi, lo := g.src(), g.src()
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4 in bits 12–15 of the third group
	lo = lo&^(0x3<<62) | 0x2<<62 // RFC 4122 variant 10xx
	var b [36]byte
	// Each group is written from its last digit backwards; dashes sit at 8, 13, 18 and 23.
	lo = putHex(b[24:36], lo)
	b[23] = '-'
	putHex(b[19:23], lo)
	b[18] = '-'
	hi = putHex(b[14:18], hi)
	b[13] = '-'
	hi = putHex(b[9:13], hi)
	b[8] = '-'
	putHex(b[0:8], hi)
	return string(b[:])
}

// putHex writes the low len(dst) hex digits of v into dst, most significant first, and returns
// v without them.
func putHex(dst []byte, v uint64) uint64 {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return v
}
