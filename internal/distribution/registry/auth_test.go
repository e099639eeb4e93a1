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

func TestHashPasswordAndHtpasswd(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil || !strings.HasPrefix(h, "$6$") {
		t.Fatalf("HashPassword = %q, %v", h, err)
	}
	if ok, _ := CheckHash("s3cret", h); !ok {
		t.Fatal("own hash does not verify")
	}
	users, err := ParseHtpasswd(strings.NewReader("# comment\n\nalice:" + h + "\nbob:$5$rounds=1000$ab$pvoBecalA78StTh86CqG8MsZcI1O/fpecpCjMGNmZ.A\n"))
	if err != nil || len(users) != 2 || users["alice"] != h {
		t.Fatalf("ParseHtpasswd = %v, %v", users, err)
	}
	for _, bad := range []string{"nocolon\n", "carol:$2y$05$abcdefghijklmnopqrstuu5Wm0fGPSX3TZkEAXYl6GYJnDXaL7yJK\n", "dave:plain\n"} {
		if _, err := ParseHtpasswd(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseHtpasswd(%q) accepted", bad)
		}
	}
}
