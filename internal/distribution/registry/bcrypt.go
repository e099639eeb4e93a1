package registry

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"strconv"
	"sync"
)

// bcrypt (Provos and Mazières, "A Future-Adaptable Password Scheme",
// 1999), as `htpasswd -B` writes it: "$2y$<cost>$<22-char salt><31-char
// hash>". It is the Blowfish cipher with an expensive key schedule.
// Blowfish's initial subkeys are the hexadecimal digits of pi, computed
// here once instead of being stored as a table.

var bcryptEncoding = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

type blowfish struct {
	p [18]uint32
	s [4][256]uint32
}

var (
	blowfishInitOnce sync.Once
	blowfishInit     blowfish
)

// initialBlowfish returns Blowfish's initial state: the first 18+1024
// 32-bit words of pi's fractional part.
func initialBlowfish() *blowfish {
	blowfishInitOnce.Do(func() {
		w := piWords(18 + 4*256)
		copy(blowfishInit.p[:], w[:18])
		for i := range 4 {
			copy(blowfishInit.s[i][:], w[18+256*i:18+256*(i+1)])
		}
	})
	c := blowfishInit
	return &c
}

// piWords computes the first n 32-bit words of the fractional part of pi
// with Machin's formula, pi = 16 atan(1/5) - 4 atan(1/239), in fixed point
// with 64 guard bits.
func piWords(n int) []uint32 {
	const guard = 64
	bits := uint(32*n + guard)
	one := new(big.Int).Lsh(big.NewInt(1), bits)
	atanInv := func(x int64) *big.Int {
		sum, t := new(big.Int), new(big.Int)
		term := new(big.Int).Quo(one, big.NewInt(x))
		x2 := big.NewInt(x * x)
		for k := int64(0); term.Sign() != 0; k++ {
			t.Quo(term, big.NewInt(2*k+1))
			if k%2 == 0 {
				sum.Add(sum, t)
			} else {
				sum.Sub(sum, t)
			}
			term.Quo(term, x2)
		}
		return sum
	}
	pi := new(big.Int).Mul(atanInv(5), big.NewInt(16))
	pi.Sub(pi, new(big.Int).Mul(atanInv(239), big.NewInt(4)))
	pi.Sub(pi, new(big.Int).Mul(one, big.NewInt(3))) // keep the fraction
	pi.Rsh(pi, guard)
	b := pi.FillBytes(make([]byte, 4*n))
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return out
}

func (c *blowfish) f(x uint32) uint32 {
	return ((c.s[0][x>>24] + c.s[1][x>>16&0xff]) ^ c.s[2][x>>8&0xff]) + c.s[3][x&0xff]
}

// encrypt enciphers one 64-bit block (16 Feistel rounds, two per step).
func (c *blowfish) encrypt(l, r uint32) (uint32, uint32) {
	for i := 0; i < 16; i += 2 {
		l ^= c.p[i]
		r ^= c.f(l)
		r ^= c.p[i+1]
		l ^= c.f(r)
	}
	l ^= c.p[16]
	r ^= c.p[17]
	return r, l
}

// nextWord reads four bytes of b cyclically from *pos.
func nextWord(b []byte, pos *int) uint32 {
	var w uint32
	for range 4 {
		w = w<<8 | uint32(b[*pos])
		*pos = (*pos + 1) % len(b)
	}
	return w
}

// expandKey is bcrypt's salted Blowfish key schedule; a nil salt gives the
// plain Blowfish schedule.
func (c *blowfish) expandKey(key, salt []byte) {
	j := 0
	for i := range c.p {
		c.p[i] ^= nextWord(key, &j)
	}
	var l, r uint32
	js := 0
	next := func() {
		if salt != nil {
			l ^= nextWord(salt, &js)
			r ^= nextWord(salt, &js)
		}
		l, r = c.encrypt(l, r)
	}
	for i := 0; i < len(c.p); i += 2 {
		next()
		c.p[i], c.p[i+1] = l, r
	}
	for i := range c.s {
		for k := 0; k < 256; k += 2 {
			next()
			c.s[i][k], c.s[i][k+1] = l, r
		}
	}
}

// bcryptRaw returns the 23 bytes bcrypt encodes for password, salt, cost.
func bcryptRaw(password []byte, salt []byte, cost int) []byte {
	key := append(append([]byte{}, password...), 0)
	if len(key) > 72 {
		key = key[:72]
	}
	c := initialBlowfish()
	c.expandKey(key, salt)
	for range uint64(1) << cost {
		c.expandKey(key, nil)
		c.expandKey(salt, nil)
	}
	var text [6]uint32
	magic := []byte("OrpheanBeholderScryDoubt")
	for i := range text {
		text[i] = binary.BigEndian.Uint32(magic[4*i:])
	}
	for range 64 {
		for j := 0; j < 6; j += 2 {
			text[j], text[j+1] = c.encrypt(text[j], text[j+1])
		}
	}
	out := make([]byte, 24)
	for i, w := range text {
		binary.BigEndian.PutUint32(out[4*i:], w)
	}
	return out[:23]
}

type bcryptParams struct {
	cost int
	salt []byte
	sum  string // the 31-character encoded hash
}

func parseBcrypt(h string) (bcryptParams, error) {
	var p bcryptParams
	// $2y$10$ + 22 + 31
	if len(h) != 60 || h[0] != '$' || h[1] != '2' || (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' || h[6] != '$' {
		return p, fmt.Errorf("malformed bcrypt hash")
	}
	cost, err := strconv.Atoi(h[4:6])
	if err != nil || cost < 4 || cost > 31 {
		return p, fmt.Errorf("bcrypt cost %q out of range", h[4:6])
	}
	salt, err := bcryptEncoding.DecodeString(h[7:29])
	if err != nil || len(salt) != 16 {
		return p, fmt.Errorf("malformed bcrypt salt")
	}
	if _, err := bcryptEncoding.DecodeString(h[29:]); err != nil {
		return p, fmt.Errorf("malformed bcrypt hash")
	}
	return bcryptParams{cost: cost, salt: salt, sum: h[29:]}, nil
}

func checkBcrypt(password, h string) (bool, error) {
	p, err := parseBcrypt(h)
	if err != nil {
		return false, err
	}
	got := bcryptEncoding.EncodeToString(bcryptRaw([]byte(password), p.salt, p.cost))
	return subtle.ConstantTimeCompare([]byte(got), []byte(p.sum)) == 1, nil
}
