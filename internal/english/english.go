// Package english words counts in messages people read: "1 machine",
// "2 machines". It imports nothing heavier than strconv, so the client
// may use it.
package english

import "strconv"

// Plural is n and noun, with an s unless n is 1: Plural(1, "machine") is
// "1 machine", Plural(0, "machine") "0 machines".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
