package testenv

import "testing"

func TestTier(t *testing.T) {
	for _, c := range []struct {
		env  string
		long bool
		size int
	}{{"", false, 2}, {"0", false, 2}, {"false", false, 2}, {"1", true, 10}, {"true", true, 10}} {
		t.Setenv(LongEnv, c.env)
		if Long() != c.long || Size(t, "steps", 2, 10) != c.size {
			t.Errorf("%s=%q: long %v, size %d; want %v, %d", LongEnv, c.env, Long(), Size(t, "steps", 2, 10), c.long, c.size)
		}
	}
	t.Setenv(LongEnv, "yes please")
	defer func() {
		if recover() == nil {
			t.Errorf("%s=%q: no panic", LongEnv, "yes please")
		}
	}()
	Long()
}
