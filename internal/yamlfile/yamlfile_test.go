package yamlfile

import (
	"strings"
	"testing"
	"time"
)

type doc struct {
	A map[string]any `yaml:"a"`
	B any            `yaml:"b"`
	C any            `yaml:"c"`
	D any            `yaml:"d"`
	E any            `yaml:"e"`
	F any            `yaml:"f"`
	G any            `yaml:"g"`
	H any            `yaml:"h"`
	I any            `yaml:"i"`
}

// An alias that refers to its own anchor, or a billion-laughs file, must
// end in a clear error quickly, not in endless recursion.
func TestDecodeHostileAliases(t *testing.T) {
	laughs := `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`
	for name, in := range map[string]string{
		"self-alias":     "a: &a\n  b: *a\n",
		"billion-laughs": laughs,
	} {
		t.Run(name, func(t *testing.T) {
			done := make(chan *Errors, 1)
			start := time.Now()
			go func() {
				var v doc
				_, errs := Decode("nines.yaml", []byte(in), &v)
				done <- errs
			}()
			select {
			case errs := <-done:
				took := time.Since(start)
				t.Logf("%s: %v in %s", name, errs.Err(), took)
				if errs.Err() == nil {
					t.Fatal("hostile aliases decoded without an error")
				}
				if msg := errs.Error(); !strings.HasPrefix(msg, "nines.yaml") {
					t.Fatalf("error %q does not name the file", msg)
				}
				if took > time.Second {
					t.Fatalf("took %s, want under a second", took)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Decode still running after 5 s")
			}
		})
	}
}

// A plain anchor and alias still decode, and fields keep their lines.
func TestDecodeAliasStillWorks(t *testing.T) {
	in := "a: &x\n  k: v\nb: *x\n"
	var v doc
	lines, errs := Decode("f.yaml", []byte(in), &v)
	if errs.Err() != nil {
		t.Fatal(errs)
	}
	if v.A["k"] != "v" || v.B.(map[string]any)["k"] != "v" {
		t.Fatalf("decoded %+v", v)
	}
	if got := lines.Line("b"); got != 3 {
		t.Fatalf("line of b = %d, want 3", got)
	}
	if got := lines.Line("a.k"); got != 2 {
		t.Fatalf("line of a.k = %d, want 2", got)
	}
}
