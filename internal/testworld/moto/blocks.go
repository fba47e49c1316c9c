package moto

import "path/filepath"

// The local AWS keeps the bytes of volumes and snapshots as sparse files under
// its data directory (Server.DataDir, or DataDirOf for a running world), one
// tree per account and region (autoami_blocks.py makes and removes them).

// VolumeFile is the sparse file holding a volume's bytes, of the volume's size.
func VolumeFile(dataDir, account, region, volumeID string) string {
	return filepath.Join(dataDir, account, region, "volumes", volumeID+".img")
}

// SnapshotFile is the file holding a snapshot's bytes, of its volume size. It
// is absent for the snapshots moto makes for its built-in AMIs (all zeros).
func SnapshotFile(dataDir, account, region, snapshotID string) string {
	return filepath.Join(dataDir, account, region, "snapshots", snapshotID+".img")
}

// AttachedVolumeFile is the hard link of an attached volume's file in the
// instance's devices directory: what the instance's unpacker daemon sees as
// the volume (--local-devices). It exists from AttachVolume to DetachVolume.
func AttachedVolumeFile(dataDir, account, region, instanceID, volumeID string) string {
	return filepath.Join(dataDir, account, region, "instances", instanceID, "devices", volumeID+".img")
}
