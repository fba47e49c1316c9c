// Package boottest proves that the volumes the unpacker produces boot: its
// tests (run by make test, as root) lay out a from-scratch volume on a loop
// device, unpack a small bootable root filesystem onto it with the patch
// engine (and, in local mode, through the daemon's API), make it bootable,
// and boot the loop image under qemu with SeaBIOS and with OVMF, waiting for
// the image's own "booted" marker and login prompt on the serial console.
// They then patch the volume to the next revision (another kernel command
// line, initramfs and GRUB modules) and boot it again, and boot a layered
// volume: a base image standing in for an AMI snapshot, with an overlay
// unpacked onto the root partition Find located.
//
// The package has no non-test code besides this comment.
package boottest
