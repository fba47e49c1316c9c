// Package testworld is the local AWS our tests, benchmarks and the demo run
// against. Its sub-packages start and control that world:
//
//   - moto: a moto_server on loopback, started, reset and stopped by PID.
//
// Nothing in testworld is linked into the provider or the unpacker; it is used
// by tests and by the demo command (internal/testworld/cmd/localaws).
package testworld
