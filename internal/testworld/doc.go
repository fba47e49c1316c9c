// Package testworld is the local AWS our tests, benchmarks and the demo run
// against. Start gives a World: a moto server with autoami's additions
// (package moto) behind a fault-injecting proxy (package faultproxy), with SDK
// configurations for any account. Its sub-packages:
//
//   - moto: moto's server on loopback, started, reset and stopped by PID,
//     with the behaviour moto lacks added in-process and each addition named.
//   - faultproxy: latency, throttling, dropped connections, and per-action
//     call and byte counts between the SDK and moto.
//   - loopdev: loop devices and mounts for tests, undone in cleanup.
//   - bootfs: small bootable root filesystems built from Debian packages.
//   - qemuboot: boots a disk image under qemu (SeaBIOS or OVMF) and waits
//     for the system to come up on the serial console.
//
// See README.md in this directory. Nothing in testworld is linked into the
// provider or the unpacker; it is used by tests and by the demo command
// (internal/testworld/cmd/localaws).
package testworld
