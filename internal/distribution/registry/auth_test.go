package registry

import (
	"strings"
	"testing"
)

// Vectors produced with `openssl passwd -5/-6 -salt ...`.
func TestCheckHashVectors(t *testing.T) {
	for _, v := range []struct{ pw, hash string }{
		{"Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
		{"Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"x", "$6$toolongsaltstrin$m5UCdGkMg16fnZB/afayhHcFYEQvnTRoKod8GIJKB0rGGl9IQGUPKeGHHw5xPOFVPjhTAcuzioT6ZcDqsMKJ80"},
		{"correct horse battery staple with a very long password exceeding sixty four bytes in length!!",
			"$6$abcdefgh$gESByGKrJDA84S04Z0aO3Ly9fFLSWpg66Zq7PbXN8OW23YMgCya66Htygfx11xTuVFyyLr7K6y69Inet.G1Lx."},
		{"Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"pw", "$5$rounds=1000$ab$pvoBecalA78StTh86CqG8MsZcI1O/fpecpCjMGNmZ.A"},
	} {
		ok, err := CheckHash(v.pw, v.hash)
		if err != nil || !ok {
			p, _ := parseCryptHash(v.hash)
			t.Errorf("CheckHash(%q, %q) = %v, %v; computed %s", v.pw, v.hash, ok, err,
				shaCrypt(p.alg, []byte(v.pw), []byte(p.salt), p.rounds, p.customRounds))
		}
		if ok, _ := CheckHash(v.pw+"x", v.hash); ok {
			t.Errorf("wrong password accepted for %q", v.hash)
		}
	}
}

// Vectors produced with libxcrypt's crypt(3) (Python's crypt module).
func TestBcryptVectors(t *testing.T) {
	w := piWords(2)
	if w[0] != 0x243f6a88 || w[1] != 0x85a308d3 {
		t.Fatalf("pi words %08x %08x", w[0], w[1])
	}
	for _, v := range []struct{ pw, hash string }{
		{"Hello world!", "$2b$05$abcdefghijklmnopqrstuu7nFISH/8YdwlXD3lw69A4iBUf6fvWAW"},
		{"", "$2y$04$abcdefghijklmnopqrstuubyCG3zY1GIXMyxfivm.ClDiInHzxjiq"},
		{strings.Repeat("x", 80), "$2a$04$ABCDEFGHIJKLMNOPQRSTUuuPMGVdMuE6yqNwaDAANxW.7cK/ZbrX6"},
		{"s3cret", "$2y$10$0123456789abcdefghijkeUB6JF2coV1oAJUJ8VmmQLj0k0tL15dG"},
	} {
		if ok, err := CheckHash(v.pw, v.hash); err != nil || !ok {
			p, _ := parseBcrypt(v.hash)
			t.Errorf("CheckHash(%q, %q) = %v, %v; computed %s", v.pw, v.hash, ok, err,
				bcryptEncoding.EncodeToString(bcryptRaw([]byte(v.pw), p.salt, p.cost)))
		}
		if ok, _ := CheckHash(v.pw+"x", v.hash); ok && len(v.pw) < 72 {
			t.Errorf("wrong password accepted for %q", v.hash)
		}
	}
	// bcrypt reads at most 72 bytes of the password.
	if ok, _ := CheckHash(strings.Repeat("x", 72)+"tail", "$2a$04$ABCDEFGHIJKLMNOPQRSTUuuPMGVdMuE6yqNwaDAANxW.7cK/ZbrX6"); !ok {
		t.Error("bytes past 72 were not ignored")
	}
	for _, bad := range []string{"$2y$05$short", "$2y$99$abcdefghijklmnopqrstuu7nFISH/8YdwlXD3lw69A4iBUf6fvWAW", "$2x$05$abcdefghijklmnopqrstuu7nFISH/8YdwlXD3lw69A4iBUf6fvWAW"} {
		if _, err := CheckHash("x", bad); err == nil {
			t.Errorf("CheckHash accepted %q", bad)
		}
	}
	if err := validateHash(unknownUserHash); err != nil {
		t.Fatalf("unknownUserHash: %v", err)
	}
}

func TestHashPasswordAndHtpasswd(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil || !strings.HasPrefix(h, "$6$") {
		t.Fatalf("HashPassword = %q, %v", h, err)
	}
	if ok, _ := CheckHash("s3cret", h); !ok {
		t.Fatal("own hash does not verify")
	}
	users, err := ParseHtpasswd(strings.NewReader("# comment\n\nalice:" + h + "\nbob:$5$rounds=1000$ab$pvoBecalA78StTh86CqG8MsZcI1O/fpecpCjMGNmZ.A\n" +
		"carol:$2y$10$0123456789abcdefghijkeUB6JF2coV1oAJUJ8VmmQLj0k0tL15dG\n"))
	if err != nil || len(users) != 3 || users["alice"] != h {
		t.Fatalf("ParseHtpasswd = %v, %v", users, err)
	}
	for _, bad := range []string{"nocolon\n", "carol:$2y$05$abcdefghijklmnopqrstuu5Wm0f\n", "dave:plain\n"} {
		if _, err := ParseHtpasswd(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseHtpasswd(%q) accepted", bad)
		}
	}
}
