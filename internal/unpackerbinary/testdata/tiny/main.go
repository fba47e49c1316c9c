// Command tiny stands in for cmd/unpacker in the generator's test: a small
// main package stamped with -X main.version like the unpacker.
package main

var version = ""

func main() { println(version) }
