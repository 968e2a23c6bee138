package bench

import "testing"

// TestCheck_ClassifiesReads constructs each kind of bad read on purpose.
func TestCheck_ClassifiesReads(t *testing.T) {
	corrupt := Body("k", 2)
	corrupt[100] ^= 0xff
	for _, tc := range []struct {
		name     string
		found    bool
		body     []byte
		min, max uint64
		want     Verdict
	}{
		{"acknowledged version", true, Body("k", 2), 2, 2, ReadOK},
		{"in-flight newer version", true, Body("k", 3), 2, 3, ReadOK},
		{"never acknowledged, absent", false, nil, 0, 1, ReadOK},
		{"acknowledged write missing", false, nil, 2, 2, ReadLost},
		{"older than acknowledged", true, Body("k", 1), 2, 3, ReadLost},
		{"version never sent", true, Body("k", 4), 2, 3, ReadCorrupt},
		{"flipped byte", true, corrupt, 2, 2, ReadCorrupt},
		{"another key's object", true, Body("j", 2), 2, 2, ReadCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := Check("k", tc.found, tc.body, tc.min, tc.max); got != tc.want {
				t.Errorf("Check = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLedger_UnknownOutcomeRetiresKey(t *testing.T) {
	l := NewLedger()
	v1 := l.Begin("a")
	l.Ack("a", v1)
	v2 := l.Begin("a")
	l.Fail("a", v2, false) // no answer: may or may not be written
	if !l.Retired("a") {
		t.Fatal("a key with a write of unknown outcome must be retired")
	}
	b1 := l.Begin("b")
	l.Fail("b", b1, true) // certainly not written: the key stays usable
	if l.Retired("b") {
		t.Fatal("a certainly-failed write retired its key")
	}
	if v := l.Begin("b"); v != 1 {
		t.Fatalf("retry of b got version %d, want 1 again", v)
	}
	exps := l.Expectations()
	if len(exps) != 1 || exps[0] != (Expectation{Key: "a", Acked: 1, Unknown: 2}) {
		t.Fatalf("expectations %+v", exps)
	}
	if n := l.Acknowledged(); n != 1 {
		t.Fatalf("Acknowledged = %d, want 1", n)
	}
	for _, tc := range []struct {
		name  string
		found bool
		body  []byte
		want  Verdict
	}{
		{"acknowledged", true, Body("a", 1), ReadOK},
		{"unknown one landed", true, Body("a", 2), ReadOK},
		{"gone", false, nil, ReadLost},
		{"beyond", true, Body("a", 3), ReadCorrupt},
	} {
		if got, _ := CheckFinal(exps[0], tc.found, tc.body); got != tc.want {
			t.Errorf("%s: CheckFinal = %v, want %v", tc.name, got, tc.want)
		}
	}
}
