package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestClassSurvivesWrapping(t *testing.T) {
	base := Newf(NotFound, "container %q does not exist", "x")
	wrapped := fmt.Errorf("state: %w", base)
	if got := ClassOf(wrapped); got != NotFound {
		t.Fatalf("ClassOf = %v, want not found", got)
	}
	if !Is(wrapped, NotFound) || Is(wrapped, Conflict) {
		t.Fatal("Is misclassifies")
	}
	if ClassOf(errors.New("plain")) != Internal {
		t.Fatal("unclassified error should be internal")
	}
	if With(Conflict, nil) != nil {
		t.Fatal("With(nil) must stay nil")
	}
	if wrapped.Error() != `state: container "x" does not exist` {
		t.Fatalf("message changed: %q", wrapped.Error())
	}
}
