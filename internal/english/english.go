// Package english words counts in messages people read: "1 machine",
// "2 machines". It imports nothing heavier than strconv, so the client
// may use it.
package english

import "strconv"

// Plural is n and noun, with an s unless n is 1: Plural(1, "machine") is
// "1 machine", Plural(0, "machine") "0 machines". A noun whose plural is
// not noun+"s" (pass, passes) is written with Plurals.
func Plural(n int, noun string) string {
	return Plurals(n, noun, noun+"s")
}

// Plurals is n and one when n is 1, else n and many: Plurals(2, "pass",
// "passes") is "2 passes".
func Plurals(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
