package daemon

import (
	"strings"
	"testing"
)

func TestParsePS(t *testing.T) {
	out := "  PID TTY      STAT   TIME COMMAND\n" +
		"    1 ?        Ss     0:00 /sbin/init splash\n" +
		"   42 ?        S      0:00 sleep 300\n" +
		"    - -        Sl     0:00 -\n" +
		"   43 ?        S      0:00 other\n" +
		"    - -        S      0:00 -\n"
	resp, err := parsePS([]byte(out), []int{42})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(resp.Titles, ",") != "PID,TTY,STAT,TIME,COMMAND" || len(resp.Processes) != 2 ||
		strings.Join(resp.Processes[0], "|") != "42|?|S|0:00|sleep 300" || resp.Processes[1][0] != "-" {
		t.Fatalf("got %+v", resp)
	}
	if _, err := parsePS([]byte("USER COMMAND\nroot x\n"), []int{1}); err == nil {
		t.Error("ps output without PID accepted")
	}
	if err := validatePSArgs("-o user=PID"); err == nil {
		t.Error("a column renamed to PID accepted")
	}
	if err := validatePSArgs("-o pid=PID,comm"); err != nil {
		t.Error(err)
	}
}
