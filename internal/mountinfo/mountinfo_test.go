package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:            "/plain",
		`/a\040b`:           "/a b",
		`/t\011n\012b\134x`: "/t\tn\nb\\x",
		`/not\9octal`:       `/not\9octal`,
		`/end\04`:           `/end\04`,
		`\134\134`:          `\\`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
